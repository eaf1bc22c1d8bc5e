package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The daemon, on a world whose clock runs 240 times faster, lists a flux
// domain; when the flux stops, the domain stays listed until expire_after
// has passed since the last flux verdict, then leaves the published list,
// and its listing log and the publish records say so.
func TestDaemonListsThenExpires(t *testing.T) {
	const speed = 240
	w, err := simnet.Start(t.Context(), simnet.Config{Seed: 5, Speed: speed, SingleFlux: 1, DoubleFlux: -1, Benign: 1, Broken: -1,
		GeoDNS: -1, Pools: -1, Migrations: -1, SlowFlux: -1, NarrowFlux: -1,
		BigCDNs: -1, SharedHosting: -1, LoadBalancers: -1, FluxEndsAfter: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var fluxName string
	for _, d := range w.Domains() {
		if d.Class == simnet.ClassSingleFlux {
			fluxName = d.Name
		}
	}
	db, _ := seedWorld(t, w)
	dir := t.TempDir()
	asn := filepath.Join(dir, "asn.tsv")
	f, _ := os.Create(asn)
	w.WriteASNTable(f)
	f.Close()
	list := filepath.Join(dir, "list.txt")
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	cfg := fmt.Sprintf(`db: %s
resolvers: [%s]
qps: 0
asn_db: [%s]
parent_port: %d
min_interval: 30s
max_interval: 2m
window: 10m
expire_after: 20m
retention: 0s
log_level: warn
daemon:
  crawl: "@every 1s"
  classify: "@every 1s"
  publish: "@every 1s"
  exports:
    - format: domains
      out: %s
`, db, strings.Join(w.Vantages(), ", "), asn, w.ParentPort(), list)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- execute(ctx, []string{"daemon", "--config", cfgPath}, &stdio{in: strings.NewReader(""), out: &stderr, err: &stderr, now: w.Now})
	}()

	// Listed while the flux lasts, then (flux stops at 20 simulated
	// minutes, the window is 10, the expiry 20 more) off the list: about
	// 50 simulated minutes, 13 real seconds.
	var listedAt, goneAt time.Time
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && goneAt.IsZero(); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(list)
		on := slices.Contains(strings.Fields(string(b)), fluxName)
		switch {
		case on && listedAt.IsZero():
			listedAt = w.Now()
		case !on && !listedAt.IsZero():
			goneAt = w.Now()
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v\n%s", err, stderr.String())
	}
	if listedAt.IsZero() || goneAt.IsZero() {
		t.Fatalf("%s listed at %v, gone at %v (simulated)\n%s", fluxName, listedAt, goneAt, stderr.String())
	}
	fluxEnd := simnet.DefaultStart.Add(20 * time.Minute)
	if !goneAt.After(fluxEnd.Add(20 * time.Minute)) {
		t.Fatalf("%s left the list at %s, before the flux ended (%s) plus the expiry", fluxName, goneAt, fluxEnd)
	}

	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var events []classify.ListingEvent
	classify.History(store, fluxName, func(e classify.ListingEvent) error { events = append(events, e); return nil })
	if len(events) != 2 || events[0].Event != classify.EventListed || events[1].Event != classify.EventExpired {
		t.Fatalf("listing log %+v", events)
	}
	if gap := events[1].Time.Sub(events[0].Time); gap < 20*time.Minute {
		t.Fatalf("expired %s after listing; the expiry is 20m after the last flux verdict", gap)
	}
	pubs, err := store.Publishes(1000)
	if err != nil {
		t.Fatal(err)
	}
	var added, removed int
	for _, p := range pubs {
		if slices.Contains(p.Added, fluxName) {
			added++
		}
		if slices.Contains(p.Removed, fluxName) {
			removed++
		}
	}
	if added != 1 || removed != 1 {
		t.Fatalf("publishes added %s %d times and removed it %d times; want once each", fluxName, added, removed)
	}
	store.Close()

	// The command line shows the same.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"blocklist", "history", "--db", db, fluxName}, nil, &out, &out); err != nil ||
		!strings.Contains(out.String(), "listed") || !strings.Contains(out.String(), "expired") {
		t.Fatalf("blocklist history: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"blocklist", "diff", "--db", db, "--last", "1000"}, nil, &out, &out); err != nil ||
		!strings.Contains(out.String(), "+ "+fluxName) || !strings.Contains(out.String(), "- "+fluxName) {
		t.Fatalf("blocklist diff: %v\n%s", err, out.String())
	}
}
