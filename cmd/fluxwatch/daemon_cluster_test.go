package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/storage"
)

// A daemon whose crawl goes to agents counts, on /metrics, the
// observations its coordinator took from the stream and stored.
func TestDaemonExportsCoordinatorCounts(t *testing.T) {
	ns := startNATS(t)
	w := startWorld(t, 3)
	dir := t.TempDir()
	db := filepath.Join(dir, "fluxwatch.db")
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddDomains([]string{w.Domains()[0].Name}, "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`db: %s
resolvers: [127.0.0.1:1]
log_level: info
daemon:
  crawl: "@every 1s"
  classify: "@every 1h"
  publish: "@every 1h"
  serve:
    http_listen: 127.0.0.1:0
  nats:
    url: %s
    targets: ["region:lab"]
`, db, ns.ClientURL())), 0o644)
	logs, stop := startDaemon(t, cfgPath)
	httpAddr := feedWaitForLog(t, logs, `msg="feed: serving files" addr=(\S+)`)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentDone := make(chan error, 1)
	var agentLog syncBuffer
	go func() {
		agentDone <- run(ctx, []string{"agent", "--nats", ns.ClientURL(), "--name", "lab-1", "--region", "lab", "--resolver", w.Vantages()[0],
			"--qps", "0", "--parent-port", strconv.Itoa(w.ParentPort()), "--outbox", filepath.Join(t.TempDir(), "o"),
			"--heartbeat", "50ms", "--log-level", "warn"}, strings.NewReader(""), io.Discard, &agentLog)
	}()
	metrics := func() string {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	stored := regexp.MustCompile(`(?m)^fluxwatch_coordinator_stored_total [1-9]`)
	feedWaitUntil(t, 30*time.Second, "observations stored by the coordinator on /metrics", func() bool {
		return stored.MatchString(metrics())
	})
	m := metrics()
	for _, want := range []string{`(?m)^fluxwatch_coordinator_received_total [1-9]`, `(?m)^fluxwatch_coordinator_batches_total [1-9]`,
		`(?m)^fluxwatch_coordinator_terminated_total 0$`, `(?m)^fluxwatch_coordinator_redelivered_total \d`} {
		if !regexp.MustCompile(want).MatchString(m) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m, "fluxwatch_coordinator_"))
		}
	}
	if strings.Contains(m, "fluxwatch_feed_") {
		t.Errorf("/metrics has zone server metrics, with no zone served:\n%s", grepLines(m, "fluxwatch_feed_"))
	}
	cancel()
	if err := <-agentDone; err != nil {
		t.Errorf("agent: %v\n%s", err, agentLog.String())
	}
	if err := stop(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}
}
