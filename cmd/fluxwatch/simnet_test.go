package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/simnet"
)

// simnet --config-out writes a config that crawl and classify take as it
// is: no --resolver, --parent-port, --asn-db, --allowlist or --db, no
// seeds add; flux is found.
func TestSimnetConfigOut(t *testing.T) {
	const seed = 9
	cfgPath := filepath.Join(t.TempDir(), "sim.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"simnet", "--seed", "9", "--config-out", cfgPath}, strings.NewReader(""), &out, &out)
	}()
	feedWaitUntil(t, 20*time.Second, "simnet serving", func() bool { return strings.Contains(out.String(), "serving until interrupted") })
	if !strings.Contains(out.String(), "simnet: "+strings.TrimSuffix(cfgPath, ".yaml")+".db holds the world's") {
		t.Fatalf("simnet:\n%s", out.String())
	}

	// Two real seconds are a simulated minute: longer than the flux TTLs.
	if _, stderr, err := fw(t, "", "crawl", "--config", cfgPath, "--rounds", "3", "--interval", "2s", "--quiet", "--log-level", "warn"); err != nil {
		t.Fatalf("crawl: %v\n%s", err, stderr)
	}
	stdout, stderr, err := fw(t, "", "classify", "--config", cfgPath, "--json")
	if err != nil {
		t.Fatalf("classify: %v\n%s", err, stderr)
	}
	truth := startWorld(t, seed) // the same seed, the same world: its truth
	flux, found := 0, 0
	for _, d := range truth.Domains() {
		if d.Class == simnet.ClassSingleFlux || d.Class == simnet.ClassDoubleFlux {
			flux++
		}
	}
	for line := range strings.Lines(stdout) {
		var v classify.Verdict
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		d, _ := truth.Truth(v.Domain)
		switch {
		case v.Listed() && (d.Class == simnet.ClassSingleFlux || d.Class == simnet.ClassDoubleFlux):
			found++
		case v.Listed():
			t.Errorf("%s (%s, %s) listed: %s", v.Domain, d.Class, d.Kind, v.Evidence)
		}
	}
	t.Logf("%d of %d flux domains listed", found, flux)
	// The allowlisted pool is not listed (checked above); flux is found.
	if found < flux*3/4 {
		t.Errorf("%d of %d flux domains listed\n%s", found, flux, stdout)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("simnet: %v\n%s", err, out.String())
	}
}

// simnet --networks serves eval's kind of world: the same seed with flux
// networks, their late and moving domains and the names that share
// addresses with them.
func TestSimnetNetworks(t *testing.T) {
	dir := t.TempDir()
	count := func(extra ...string) int {
		t.Helper()
		seedsOut := filepath.Join(dir, fmt.Sprintf("seeds-%d.txt", len(extra)))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, append([]string{"simnet", "--seed", "4", "--seeds-out", seedsOut}, extra...), strings.NewReader(""), &out, &out)
		}()
		feedWaitUntil(t, 20*time.Second, "simnet serving", func() bool { return strings.Contains(out.String(), "serving until interrupted") })
		cancel()
		<-done
		b, err := os.ReadFile(seedsOut)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range strings.Lines(string(b)) {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				n++
			}
		}
		return n
	}
	plain, withNets := count(), count("--networks")
	w, err := simnet.Start(context.Background(), simnet.Config{Seed: 4}.WithNetworks())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if withNets != len(w.Domains()) || withNets <= plain {
		t.Errorf("simnet --networks serves %d domains, without %d; eval's world of that seed has %d", withNets, plain, len(w.Domains()))
	}
}
