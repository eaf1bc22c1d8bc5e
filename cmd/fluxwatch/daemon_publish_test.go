package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/daemon"
	"github.com/fluxwatch/fluxwatch/feed"
	"github.com/fluxwatch/fluxwatch/storage"
)

// storeListed stores flux verdicts that listed names until expires, as a
// classification would have.
func storeListed(t *testing.T, db string, names []string, expires time.Time) {
	t.Helper()
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.AddDomains(names, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	var recs []storage.VerdictRecord
	for _, n := range names {
		at := expires.Add(-classify.DefaultExpiry)
		v := classify.Verdict{Domain: n, Verdict: classify.SingleFlux, Confidence: 0.9, ClassifiedAt: at,
			Listing: &classify.Listing{FirstListed: at, LastConfirmed: at, ExpiresAt: expires}}
		b, _ := json.Marshal(v)
		recs = append(recs, storage.VerdictRecord{Domain: n, Full: b, Listed: b})
	}
	if err := store.PutVerdicts(recs); err != nil {
		t.Fatal(err)
	}
}

// startDaemon runs the daemon with the config file until the test ends
// (or stop is called, which returns its error); its log goes to the
// returned buffer.
func startDaemon(t *testing.T, cfgPath string) (logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"daemon", "--config", cfgPath}, strings.NewReader(""), io.Discard, logs)
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("the daemon did not stop in 30s")
		}
	}
	t.Cleanup(func() { stop() })
	return logs, stop
}

// A daemon serves the list as stored from its start: before any job has
// run, every export holds every name the database lists, and the publish
// history records that publish as the start's. The first scheduled
// publish then waits for the first classification (here the listings
// have run out, so it takes every name off), and every publish record
// holds what the files held.
func TestDaemonPublishesTheStoredListAtStart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fluxwatch.db")
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("stored-%02d.test", i))
	}
	storeListed(t, db, names, time.Now().Add(-time.Minute))
	list, rpz := filepath.Join(dir, "list.txt"), filepath.Join(dir, "blocklist.rpz")
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	// Publishing every second and classifying every two: a publish that
	// did not wait would publish the stored list again, as if classified.
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`db: %s
resolvers: [127.0.0.1:1]
log_level: info
daemon:
  crawl: "@every 1h"
  classify: "@every 2s"
  publish: "@every 1s"
  exports:
    - {format: domains, out: %s}
    - {format: rpz, out: %s}
`, db, list, rpz)), 0o644)

	logs, stop := startDaemon(t, cfgPath)
	feedWaitForLog(t, logs, `msg="daemon (started)"`)
	b, err := os.ReadFile(list)
	if got := strings.Fields(string(b)); err != nil || !slices.Equal(got, names) {
		t.Fatalf("when the daemon started, %s held %v (%v); want the %d stored names\n%s", list, got, err, len(names), logs.String())
	}
	zone, err := os.ReadFile(rpz)
	if err != nil || strings.Count(string(zone), " CNAME .") != 2*len(names) {
		t.Fatalf("when the daemon started, %s held\n%s (%v)", rpz, zone, err)
	}
	// status says what is stored before the first classification.
	var st daemon.Status
	if b, err := os.ReadFile(daemon.StatusPath(db)); err != nil || json.Unmarshal(b, &st) != nil || st.Listed != len(names) || st.Domains == nil {
		t.Fatalf("status at start: %+v (%v); want %d listed and the domain counts", st, err, len(names))
	}
	feedWaitUntil(t, 15*time.Second, "the expired listings unpublished", func() bool {
		b, err := os.ReadFile(list)
		return err == nil && len(strings.Fields(string(b))) == 0
	})
	time.Sleep(1500 * time.Millisecond) // a publish or two more
	if err := stop(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}

	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := store.Publishes(100)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(pubs) // oldest first
	if len(pubs) < 2 {
		t.Fatalf("publishes %+v", pubs)
	}
	if p := pubs[0]; p.Kind != storage.PublishStart || p.Listed != len(names) || !slices.Equal(p.Added, names) || len(p.Removed) != 0 {
		t.Fatalf("first publish %+v; want the start's, of the %d stored names", p, len(names))
	}
	if p := pubs[1]; p.Kind != storage.PublishScheduled || p.Listed != 0 || !slices.Equal(p.Removed, names) {
		t.Fatalf("second publish %+v; want the first scheduled one, after the first classification took every name off", p)
	}
	for _, p := range pubs[2:] {
		if p.Kind != storage.PublishScheduled || p.Listed != 0 || len(p.Added)+len(p.Removed) != 0 {
			t.Fatalf("later publish %+v; want nothing listed, nothing changed", p)
		}
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"blocklist", "diff", "--db", db, "--last", "100"}, nil, &out, &out); err != nil ||
		!strings.Contains(out.String(), fmt.Sprintf("Z (daemon start: the stored list): %d listed, %d added, 0 removed", len(names), len(names))) {
		t.Fatalf("blocklist diff: %v\n%s", err, out.String())
	}
}

// rpzSerial returns the SOA serial of the rpz file at path.
func rpzSerial(t *testing.T, path string) uint32 {
	t.Helper()
	serial, err := feed.ReadZoneSerial(path, "fluxwatch.rpz")
	if err != nil {
		t.Fatal(err)
	}
	return serial
}

// A database that does not know the serial its rpz file was published
// with (restored from a backup, say) still publishes above it at start.
func TestDaemonStartKeepsTheSerialOfTheFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fluxwatch.db")
	storeListed(t, db, []string{"stored.test"}, time.Now().Add(time.Hour))
	rpz := filepath.Join(dir, "blocklist.rpz")
	const served = 4000000000 // far above any serial taken from the clock
	os.WriteFile(rpz, []byte(fmt.Sprintf("$ORIGIN fluxwatch.rpz.\n@ 300 IN SOA localhost. hostmaster.localhost. %d 3600 600 604800 300\n@ 300 IN NS localhost.\n", served)), 0o644)
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(cfgPath, []byte(idleDaemonYAML(db, fmt.Sprintf(`  exports:
    - {format: rpz, out: %s}
`, rpz))), 0o644)
	logs, stop := startDaemon(t, cfgPath)
	feedWaitForLog(t, logs, `msg="daemon (started)"`)
	if err := stop(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}
	if got := rpzSerial(t, rpz); got <= served {
		t.Fatalf("the start published serial %d over a file at %d\n%s", got, served, logs.String())
	}
}

// An export that fails does not hold back the others: a listed name too
// long to be a trigger under the RPZ origin fails the rpz export (whole:
// no partial zone), the domains file is still written, and the publish is
// recorded with the list that file holds.
func TestDaemonPublishGoesOnPastAFailingExport(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fluxwatch.db")
	long := strings.Repeat(strings.Repeat("x", 59)+".", 4) + "test" // 244 characters: a name, but not below fluxwatch.rpz
	names := []string{"ok.test", long}
	slices.Sort(names)
	storeListed(t, db, names, time.Now().Add(time.Hour))
	list, rpz := filepath.Join(dir, "list.txt"), filepath.Join(dir, "blocklist.rpz")
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(cfgPath, []byte(idleDaemonYAML(db, fmt.Sprintf(`  exports:
    - {format: rpz, out: %s}
    - {format: domains, out: %s}
`, rpz, list))), 0o644)
	logs, stop := startDaemon(t, cfgPath)
	feedWaitForLog(t, logs, `msg="daemon (started)"`)
	if err := stop(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "publishing the stored list at start failed") || !strings.Contains(logs.String(), "publishing "+rpz+" (rpz)") {
		t.Errorf("the failed rpz export was not logged:\n%s", logs.String())
	}
	if _, err := os.Stat(rpz); err == nil {
		t.Errorf("%s was written with a name it cannot hold", rpz)
	}
	b, err := os.ReadFile(list)
	if got := strings.Fields(string(b)); err != nil || !slices.Equal(got, names) {
		t.Fatalf("%s holds %v (%v); want %v", list, got, err, names)
	}
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pubs, err := store.Publishes(10)
	if err != nil || len(pubs) != 1 || pubs[0].Kind != storage.PublishStart || !slices.Equal(pubs[0].Added, names) {
		t.Fatalf("publishes %+v, %v; want the start's, of %v", pubs, err, names)
	}
}
