package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// TestShardKilledCoordinatorLosesNothing runs the daemon of shard 1 of 2
// as a process while agents' observations for it stream in, kills it with
// SIGKILL at random moments while it ingests, eight times, and starts it
// again each time. In the end its database must hold every observation
// published to it, none lost with the process. (A redelivered observation
// is stored under the key it had, domain, start and vantage, so storing it
// again cannot make a second copy: the count below checks losses only.)
func TestShardKilledCoordinatorLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	ns := startNATS(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "shard1.db")
	var domains []string
	for i := 0; len(domains) < 200; i++ {
		if n := fmt.Sprintf("d%d.flux.example%d", i, i); cluster.ShardOf(n, 2) == 1 {
			domains = append(domains, n)
		}
	}
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddDomains(domains, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	cfgPath := filepath.Join(dir, "shard1.yaml")
	os.WriteFile(cfgPath, []byte(idleDaemonYAML(db, fmt.Sprintf(`  nats:
    url: %s
    shard: 1
    shards: 2
    ingest_batch: 50
    ingest_ack_wait: 2s
`, ns.ClientURL()))), 0o644)
	start := func() (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(bin, "daemon", "--config", cfgPath)
		logs := &syncBuffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, logs
	}

	// The agents: 6,000 observations of the shard's domains, published
	// as agents publish them, while the daemon is killed and restarted.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	daemon, logs := start()
	defer func() { daemon.Process.Kill(); daemon.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	feedWaitUntil(t, 30*time.Second, "the daemon to create the observation stream", func() bool {
		_, err := js.Stream(ctx, "FLUXWATCH_OBS")
		return err == nil
	})
	const perDomain = 45 // probes: 3 vantages × 15 rounds
	published := make(chan error, 1)
	var sent atomic.Int64
	go func() {
		t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		for round := range perDomain / 3 {
			for _, d := range domains {
				for v := range 3 {
					vantage := fmt.Sprintf("lab/192.0.2.%d:53", v+1)
					p := obs.Probe{Domain: d, Vantage: vantage, Start: t0.Add(time.Duration(round) * time.Minute),
						Observations: []obs.Observation{{Time: t0.Add(time.Duration(round) * time.Minute), Vantage: vantage, Name: d,
							QType: dns.TypeA, Answer: []obs.Record{{Name: d, Type: dns.TypeA, TTL: 60, Data: fmt.Sprintf("198.51.100.%d", round)}}}}}
					var b bytes.Buffer
					if err := importer.Encode(&b, p); err != nil {
						published <- err
						return
					}
					m := nats.NewMsg("fluxwatch.obs.1.sim")
					m.Header.Set(nats.MsgIdHdr, cluster.ObservationID("sim", vantage, d, p.Start))
					m.Data = bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
					if _, err := js.PublishMsg(ctx, m); err != nil {
						published <- err
						return
					}
					sent.Add(1)
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
		published <- nil
	}()
	rng := rand.New(rand.NewPCG(19, 19))
	total, midway := int64(len(domains)*perDomain), 0
	delivered := func() uint64 {
		cons, err := js.Consumer(ctx, "FLUXWATCH_OBS", "coordinator-1")
		if err != nil {
			return 0
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return 0
		}
		return info.Delivered.Consumer
	}
	for kill := range 8 {
		// Killed while it ingests: once it has taken some observations
		// since it started, at a random moment of the next batches.
		from := delivered()
		feedWaitUntil(t, 30*time.Second, "the daemon to take observations", func() bool {
			return delivered() >= from+100 || sent.Load() == total
		})
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		if n := sent.Load(); n > 0 && n < total {
			midway++
		}
		daemon.Process.Signal(syscall.SIGKILL)
		daemon.Wait()
		if !strings.Contains(logs.String(), "coordinator starting") {
			t.Fatalf("kill %d: the daemon had not started its coordinator:\n%s", kill, logs.String())
		}
		daemon, logs = start()
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if midway == 0 {
		t.Fatal("no kill came while observations were streaming in: the test proves nothing")
	}
	// Everything published is taken and acknowledged; then the daemon
	// stops as it should.
	feedWaitUntil(t, 60*time.Second, "the shard to store every observation", func() bool {
		cons, err := js.Consumer(ctx, "FLUXWATCH_OBS", "coordinator-1")
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	daemon.Process.Signal(syscall.SIGTERM)
	if err := daemon.Wait(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}
	store, err = storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Check(); err != nil {
		t.Fatalf("database check: %v", err)
	}
	st, err := store.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := len(domains) * perDomain; st.Probes != want {
		t.Errorf("the shard holds %d probes; %d distinct observations were published to it", st.Probes, want)
	}
}
