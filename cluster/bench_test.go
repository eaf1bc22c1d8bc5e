package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/simnet"
)

// benchProbe is a probe shaped like the crawler's for a flux domain: A
// (three addresses), AAAA (none), NS (two), the delegation (NS and glue)
// and the name servers' A and AAAA: nine observations.
func benchProbe(domain, vantage string, start time.Time, n int) obs.Probe {
	addr := func(i int) string { return fmt.Sprintf("198.%d.%d.%d", 18+i%2, (n>>8)&255, (n+i)&255) }
	ns := []string{"ns1." + domain, "ns2." + domain}
	o := func(off time.Duration, name string, qt uint16, flags obs.Flags, ans ...obs.Record) obs.Observation {
		return obs.Observation{Time: start.Add(off), Vantage: vantage, Name: name, QType: qt, Flags: flags, RTT: 700 * time.Microsecond, Answer: ans}
	}
	a := func(name, data string) obs.Record {
		return obs.Record{Name: name, Type: dns.TypeA, TTL: 60, Data: data}
	}
	nsr := func(name, data string) obs.Record {
		return obs.Record{Name: name, Type: dns.TypeNS, TTL: 3600, Data: data}
	}
	return obs.Probe{Domain: domain, Vantage: vantage, Start: start, Observations: []obs.Observation{
		o(0, domain, dns.TypeA, obs.FlagRA, a(domain, addr(0)), a(domain, addr(1)), a(domain, addr(2))),
		o(time.Millisecond, domain, dns.TypeAAAA, obs.FlagRA),
		o(2*time.Millisecond, domain, dns.TypeNS, obs.FlagRA, nsr(domain, ns[0]), nsr(domain, ns[1])),
		o(3*time.Millisecond, domain, dns.TypeNS, obs.FlagDelegation, nsr(domain, ns[0]), nsr(domain, ns[1]), a(ns[0], addr(3)), a(ns[1], addr(4))),
		o(4*time.Millisecond, ns[0], dns.TypeA, obs.FlagRA, a(ns[0], addr(3))),
		o(5*time.Millisecond, ns[0], dns.TypeAAAA, obs.FlagRA),
		o(6*time.Millisecond, ns[1], dns.TypeA, obs.FlagRA, a(ns[1], addr(4))),
		o(7*time.Millisecond, ns[1], dns.TypeAAAA, obs.FlagRA),
		o(8*time.Millisecond, domain, dns.TypeA, obs.FlagRA, a(domain, addr(5))),
	}}
}

// BenchmarkIngest measures the coordinator's ingest: probe messages (nine
// observations each) published to JetStream by a client on loopback,
// consumed, stored in bbolt a batch per transaction and acknowledged. One
// op is one probe; observations/s is what SCALING.md quotes.
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{250, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchIngest(b, batch) })
	}
}

func benchIngest(b *testing.B, batch int) {
	srv := startNATS(b)
	store := openStore(b, "bench.db")
	const domains = 10000
	names := make([]string, domains)
	for i := range names {
		names[i] = fmt.Sprintf("d%05d.flux.example", i)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := store.AddDomains(names, "bench", start); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	c, err := NewCoordinator(store, CoordinatorConfig{Conn: ConnConfig{URL: srv.ClientURL()}, Logger: log, IngestBatch: batch,
		Now: func() time.Time { return start }})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	msgs := make([]*nats.Msg, b.N)
	bytes := 0
	for i := range msgs {
		p := benchProbe(names[i%domains], fmt.Sprintf("eu/192.0.2.%d:53", i/domains%4), start.Add(time.Duration(i)*time.Millisecond), i)
		m, _, err := encodeObservation("fluxwatch.obs.bench", "bench", p)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
		bytes += len(m.Data)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	before, _ := store.Stats()
	b.ResetTimer()
	began := time.Now()
	for _, m := range msgs {
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	for c.Stats().Stored < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	after, _ := store.Stats()
	secs := elapsed.Seconds()
	b.ReportMetric(float64(b.N)/secs, "probes/s")
	b.ReportMetric(float64(9*b.N)/secs, "observations/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "msg-bytes/probe")
	b.ReportMetric(float64(c.Stats().Batches), "transactions")
	b.ReportMetric(float64(after.FileBytes-before.FileBytes)/float64(b.N), "db-bytes/probe")
}

// BenchmarkAgent measures one agent against the simulated world: every
// domain of a large world dispatched to it, measured through four
// vantages without a rate limit, published and stored. One op is one
// round of all the domains; probes/s and queries/s are the agent's.
func BenchmarkAgent(b *testing.B) {
	ctx := context.Background()
	world, err := simnet.Start(ctx, simnet.Config{Seed: 5, Speed: 1, SingleFlux: 60, DoubleFlux: 40, Benign: 150, Broken: 20})
	if err != nil {
		b.Fatal(err)
	}
	defer world.Close()
	srv := startNATS(b)
	store := openStore(b, "bench.db")
	var names []string
	for _, d := range world.Domains() {
		names = append(names, d.Name)
	}
	if _, err := store.AddDomains(names, "bench", world.Now()); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	c, err := NewCoordinator(store, CoordinatorConfig{Conn: ConnConfig{URL: srv.ClientURL()}, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.WaitReady(ctx)
	engine, err := crawler.NewEngine(crawler.EngineOptions{ClientOptions: crawler.ClientOptions{Timeout: time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	defer engine.Close()
	var vs []scheduler.Vantage
	for _, v := range world.Vantages() {
		vs = append(vs, scheduler.Vantage{Addr: v})
	}
	a, err := NewAgent(engine, crawler.Crawler{NSHosts: true, Delegation: true, ParentPort: world.ParentPort(),
		Direct: crawler.NewClient(crawler.ClientOptions{Timeout: time.Second, NoRecursion: true})},
		AgentConfig{Conn: ConnConfig{URL: srv.ClientURL()}, Name: "bench", Vantages: vs, InFlight: 32,
			Outbox: filepath.Join(b.TempDir(), "outbox"), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { cancel(); <-done }()
	b.ResetTimer()
	began := time.Now()
	for range b.N {
		want := c.Stats().Stored + int64(len(names)*len(vs))
		if _, err := c.DispatchDomains(ctx, names); err != nil {
			b.Fatal(err)
		}
		for c.Stats().Stored < want {
			time.Sleep(time.Millisecond)
		}
	}
	secs := time.Since(began).Seconds()
	b.StopTimer()
	h := a.Heartbeat()
	b.ReportMetric(float64(h.Probes)/secs, "probes/s")
	b.ReportMetric(float64(h.Queries)/secs, "queries/s")
	b.ReportMetric(float64(len(names)), "domains")
}
