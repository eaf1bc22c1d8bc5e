package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

func TestAgentVantages(t *testing.T) {
	rc := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(rc, []byte("search example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:1\n"), 0o644)
	cfg := config.Default()
	got, err := agentVantages(cfg, rc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Addr != "192.0.2.53:53" || got[1].Addr != "[2001:db8::53]:53" {
		t.Errorf("from resolv.conf: %+v", got)
	}
	cfg.Resolvers = []string{"198.51.100.1"}
	if got, err := agentVantages(cfg, rc); err != nil || len(got) != 1 || got[0].Addr != "198.51.100.1:53" {
		t.Errorf("with --resolver: %+v, %v", got, err)
	}
	empty := filepath.Join(t.TempDir(), "empty.conf")
	os.WriteFile(empty, []byte("search example\n"), 0o644)
	if _, err := agentVantages(config.Default(), empty); err == nil {
		t.Error("no name server anywhere, and no error")
	}
}

func TestAgentCommandRejectsBadNames(t *testing.T) {
	_, _, err := fw(t, "", "agent", "--name", "no spaces", "--resolver", "192.0.2.53", "--outbox", filepath.Join(t.TempDir(), "o"))
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "agent name") {
		t.Errorf("got %v, want a usage error about the agent name", err)
	}
}

// TestAgentCommandMeasuresForACoordinator runs `fluxwatch agent` against
// an in-process NATS server and the simulated world, with a coordinator
// over a database: the work it dispatches is measured through the agent's
// resolver and stored under the region's label.
func TestAgentCommandMeasuresForACoordinator(t *testing.T) {
	ns := startNATS(t)
	w := startWorld(t, 3)
	store, err := storage.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	domain := w.Domains()[0].Name
	if _, err := store.AddDomains([]string{domain}, "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	coord, err := cluster.NewCoordinator(store, cluster.CoordinatorConfig{Conn: cluster.ConnConfig{URL: ns.ClientURL()},
		Targets: []string{"region:lab"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	if err := coord.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	vantage := w.Vantages()[0]
	actx, stop := context.WithCancel(ctx)
	var out, errb bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(actx, []string{"agent", "--nats", ns.ClientURL(), "--name", "lab-1", "--region", "lab", "--resolver", vantage,
			"--qps", "0", "--parent-port", strconv.Itoa(w.ParentPort()), "--outbox", filepath.Join(t.TempDir(), "o"),
			"--heartbeat", "50ms", "--log-level", "warn"}, strings.NewReader(""), &out, &errb)
	}()
	if _, err := coord.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	var vantages []string
	for deadline := time.Now().Add(20 * time.Second); len(vantages) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		store.History(domain, time.Time{}, time.Time{}, func(p obs.Probe) error { vantages = append(vantages, p.Vantage); return nil })
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("agent: %v\n%s", err, errb.String())
	}
	if len(vantages) != 1 || vantages[0] != "lab/"+vantage {
		t.Fatalf("stored probes through %v, want one through lab/%s\n%s", vantages, vantage, errb.String())
	}
	if !strings.Contains(out.String(), "agent lab-1: 1 work items done") {
		t.Errorf("summary: %q", out.String())
	}
	if as := coord.Agents(); len(as) != 1 || as[0].Agent != "lab-1" || as[0].Region != "lab" {
		t.Errorf("agents: %+v", as)
	}
}

// startNATS runs an in-process NATS server with JetStream on a free
// loopback port until the test ends.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}
