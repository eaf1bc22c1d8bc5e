package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/storage"
)

// TestKilledDaemonLosesNothing kills a crawling daemon with SIGKILL at a
// random moment after it reported a commit, 20 times over, against the
// simulated world. Each time the database must pass its check and hold
// at least everything reported committed, and each restart must go on
// measuring: in the end every domain has been measured.
func TestKilledDaemonLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary 20 times")
	}
	bin := buildBinary(t)
	w := startWorld(t, 13)
	db, _ := seedWorld(t, w)
	cfgPath := filepath.Join(t.TempDir(), "daemon.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`db: %s
resolvers: [%s]
parent_port: %d
qps: 0
min_interval: 1s
max_interval: 2s
log_level: debug
daemon:
  crawl: "@every 1s"
  classify: "@every 1h"
  publish: "@every 1h"
`, db, strings.Join(w.Vantages(), ", "), w.ParentPort())), 0o644)
	committed := regexp.MustCompile(`msg=committed probes=(\d+)`)
	rng := rand.New(rand.NewPCG(7, 7))
	var before int64 // probes in the database before each run
	for i := range 20 {
		cmd := exec.Command(bin, "daemon", "--config", cfgPath)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var reported atomic.Int64
		first := make(chan struct{})
		done := make(chan struct{})
		go func() { // keeps reading, so later commits count too
			defer close(done)
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if m := committed.FindStringSubmatch(sc.Text()); m != nil {
					n, _ := strconv.ParseInt(m[1], 10, 64)
					if reported.Swap(n) == 0 {
						close(first)
					}
				}
			}
		}()
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("run %d: no commit reported in 30s", i)
		}
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		<-done
		store, err := storage.Open(db)
		if err != nil {
			t.Fatalf("run %d: reopening after the kill: %v", i, err)
		}
		if err := store.Check(); err != nil {
			t.Fatalf("run %d: database inconsistent after the kill: %v", i, err)
		}
		st, _ := store.Stats()
		store.Close()
		if got := int64(st.Probes); got < before+reported.Load() {
			t.Fatalf("run %d: %d probes after the kill; %d before and %d reported committed", i, got, before, reported.Load())
		}
		before = int64(st.Probes)
	}
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, d := range w.Domains() {
		dom, _, _ := store.Domain(d.Name)
		if dom.NextDue.IsZero() {
			t.Errorf("%s was never measured", d.Name)
		}
	}
}
