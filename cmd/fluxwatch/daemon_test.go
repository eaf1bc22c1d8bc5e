package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
	"github.com/fluxwatch/fluxwatch/simnet"
)

// syncBuffer is a buffer safe for the daemon's goroutines.
type syncBuffer = dnstest.Output

func TestDaemonCrawlsClassifiesAndPublishes(t *testing.T) {
	w := startWorld(t, 11)
	db, _ := seedWorld(t, w)
	dir := t.TempDir()
	asn, allow := filepath.Join(dir, "asn.tsv"), filepath.Join(dir, "allow.txt")
	f, _ := os.Create(asn)
	w.WriteASNTable(f)
	f.Close()
	f, _ = os.Create(allow)
	w.WriteAllowlist(f)
	f.Close()
	list := filepath.Join(dir, "list.txt")
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	cfg := fmt.Sprintf(`db: %s
resolvers: [%s]
qps: 0
asn_db: [%s]
allowlist: [%s]
parent_port: %d
min_interval: 1s
max_interval: 2s
log_level: warn
daemon:
  crawl: "@every 1s"
  classify: "@every 2s"
  publish: "@every 2s"
  exports:
    - format: domains
      out: %s
`, db, strings.Join(w.Vantages(), ", "), asn, allow, w.ParentPort(), list)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"daemon", "--config", cfgPath}, strings.NewReader(""), &stderr, &stderr)
	}()

	var flux []string
	for _, d := range w.Domains() {
		if d.Class == simnet.ClassSingleFlux || d.Class == simnet.ClassDoubleFlux {
			flux = append(flux, d.Name)
		}
	}
	slices.Sort(flux)
	deadline := time.Now().Add(45 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(list)
		if got = strings.Fields(string(b)); slices.Equal(got, flux) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop after cancel")
	}
	if !slices.Equal(got, flux) {
		t.Fatalf("published list %v; want the flux domains %v\n%s", got, flux, stderr.String())
	}
}
