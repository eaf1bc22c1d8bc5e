package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
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

// shardRig is a sharded cluster in one process: one NATS server and K
// coordinators, each with its own database holding the domains ShardOf
// gives its shard, as `fluxwatch cluster reshard` would leave them.
type shardRig struct {
	url     string
	shards  int
	domains []string
	coords  []*Coordinator
	stores  []*storage.Store
}

// benchStart is the clock of every sharded benchmark: next-due times are
// computed from it, so they do not depend on when the run happens.
var benchStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// startShards starts shards coordinators sharing that many domains.
// Each name is its own registrable domain (BenchmarkIngest's all share
// flux.example, which would put every one in one shard). onStored, if
// set, is called with the IDs of every batch stored, by any shard.
func startShards(b *testing.B, shards, domains int, onStored func(ids []string)) *shardRig {
	b.Helper()
	r := &shardRig{url: startNATS(b).ClientURL(), shards: shards}
	owned := make([][]string, shards)
	for i := range domains {
		d := fmt.Sprintf("flux%05d.example", i)
		r.domains = append(r.domains, d)
		k := ShardOf(d, shards)
		owned[k] = append(owned[k], d)
	}
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	for k := range shards {
		store := openStore(b, fmt.Sprintf("shard%d.db", k))
		if _, err := store.AddDomains(owned[k], "bench", benchStart); err != nil {
			b.Fatal(err)
		}
		c, err := NewCoordinator(store, CoordinatorConfig{Conn: ConnConfig{URL: r.url}, Shard: k, Shards: shards,
			Logger: log, Now: func() time.Time { return benchStart }, OnStored: onStored})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		if err := c.WaitReady(ctx); err != nil {
			b.Fatal(err)
		}
		r.coords = append(r.coords, c)
		r.stores = append(r.stores, store)
	}
	return r
}

// subject is where agent publishes the observations of domain: the
// subject a work item from the domain's shard names (Work.subject), so
// K = 1 uses the unsharded subject as one coordinator always has.
func (r *shardRig) subject(domain, agent string) string {
	return Work{Shard: ShardOf(domain, r.shards), Shards: r.shards}.subject(names{DefaultPrefix}, agent)
}

// want counts, for each shard, the probes of msgs it will store.
func (r *shardRig) want(msgs []*nats.Msg, domainOf func(i int) string) []int64 {
	want := make([]int64, r.shards)
	for i := range msgs {
		want[ShardOf(domainOf(i), r.shards)]++
	}
	return want
}

// waitStored waits until every shard has stored want[k] probes and
// returns when each got there. It gives up, failing the benchmark, two
// minutes after the last shard made progress: a lost observation must
// not hang the run.
func (r *shardRig) waitStored(b *testing.B, want []int64) []time.Time {
	b.Helper()
	done := make([]time.Time, r.shards)
	left := r.shards
	var last int64
	progress := time.Now()
	for left > 0 {
		var total int64
		for k, c := range r.coords {
			n := c.Stats().Stored
			total += n
			if done[k].IsZero() && n >= want[k] {
				done[k] = time.Now()
				left--
			}
		}
		if total != last {
			last, progress = total, time.Now()
		}
		if time.Since(progress) > 2*time.Minute {
			b.Fatalf("stored %d probes and no more for 2 minutes; want %v", total, want)
		}
		time.Sleep(time.Millisecond)
	}
	return done
}

// fileBytes is the summed size of the shards' database files.
func (r *shardRig) fileBytes() int64 {
	var n int64
	for _, s := range r.stores {
		st, _ := s.Stats()
		n += st.FileBytes
	}
	return n
}

// BenchmarkShardIngest measures the ingest of K = 1, 2 and 3 shards: one
// client publishes probes (nine observations each) for 10,000 domains,
// each to the subject of its domain's shard, and every coordinator
// stores its share. One op is one probe. On a machine whose cores the
// NATS server, the publisher and all K coordinators share, the total
// cannot grow with K; what it shows is how the same work divides.
func BenchmarkShardIngest(b *testing.B) {
	for _, k := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("shards=%d", k), func(b *testing.B) { benchShardIngest(b, k) })
	}
}

func benchShardIngest(b *testing.B, shards int) {
	const domains, vantages = 10000, 4
	r := startShards(b, shards, domains, nil)
	domainOf := func(i int) string { return r.domains[i%domains] }
	msgs := make([]*nats.Msg, b.N)
	for i := range msgs {
		v := fmt.Sprintf("eu/192.0.2.%d:53", i/domains%vantages)
		p := benchProbe(domainOf(i), v, benchStart.Add(time.Duration(i)*time.Millisecond), i)
		m, _, err := encodeObservation(r.subject(p.Domain, "bench"), "bench", p)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	want := r.want(msgs, domainOf)
	nc, err := nats.Connect(r.url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	before := r.fileBytes()
	b.ResetTimer()
	began := time.Now()
	for _, m := range msgs {
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	done := r.waitStored(b, want)
	b.StopTimer()
	r.report(b, began, done, want)
	b.ReportMetric(float64(r.fileBytes()-before)/float64(9*b.N), "db-bytes/obs")
}

// report reports the total rates, over the time the last shard took;
// the slowest and fastest shard's own rate (its share over the time it
// took); and the transactions all shards committed, since a shard that
// gets 1/K of the observations commits smaller batches.
func (r *shardRig) report(b *testing.B, began time.Time, done []time.Time, want []int64) {
	var end time.Time
	lo, hi := math.Inf(1), 0.0
	var txs int64
	for k, t := range done {
		txs += r.coords[k].Stats().Batches
		if t.After(end) {
			end = t
		}
		if want[k] == 0 {
			continue // a shard given nothing has no rate
		}
		rate := float64(9*want[k]) / t.Sub(began).Seconds()
		lo, hi = min(lo, rate), max(hi, rate)
	}
	secs := end.Sub(began).Seconds()
	b.ReportMetric(float64(b.N)/secs, "probes/s")
	b.ReportMetric(float64(9*b.N)/secs, "obs/s")
	b.ReportMetric(lo, "obs/s/shard-min")
	b.ReportMetric(hi, "obs/s/shard-max")
	b.ReportMetric(float64(txs), "transactions")
}

// BenchmarkShardAgents20 is the load of 20 agents on K = 3 shards: 20
// goroutines, each with its own NATS connection and JetStream context as
// an agent has, publish the probes of their own domains (ten vantages
// each) to the subject of each domain's shard. One op is one probe.
//
// At rate=max the agents publish as fast as the server takes them: the
// most the shards ingest from many connections, and the lag, how long
// after the last publish the last probe was stored, is the backlog they
// built. At rate=45 each publishes 45 probes/s, what an agent with ten
// vantages makes at the default 20 queries/s per vantage (SCALING.md):
// the lag and the delay from publish to store are what a real cluster of
// 20 agents sees. That run lasts b.N/900 seconds.
func BenchmarkShardAgents20(b *testing.B) {
	for _, rate := range []int{0, 45} {
		name := "rate=max"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d", rate)
		}
		b.Run(name, func(b *testing.B) { benchAgents(b, 20, 3, rate) })
	}
}

// benchAgents runs agents publishing into shards, each at rate probes/s
// (0: unpaced).
func benchAgents(b *testing.B, agents, shards, rate int) {
	const domains, vantages = 10000, 10
	// Publish times by probe, and the delay of each stored probe. The
	// map from probe ID to probe is filled before anything is published
	// and set under mu, which OnStored holds.
	sent := make([]atomic.Int64, b.N)
	var mu sync.Mutex
	var index map[string]int
	var delays []time.Duration
	onStored := func(ids []string) {
		now := time.Now().UnixNano()
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if i, ok := index[id]; ok {
				delays = append(delays, time.Duration(now-sent[i].Load()))
			}
		}
	}
	r := startShards(b, shards, domains, onStored)
	// Probe i is vantage i%10 of work item i/10, and agent a measures
	// the items a, a+20, …: each agent its own domains, each domain all
	// its vantages together, as a region's agents share a work queue.
	domainOf := func(i int) string { return r.domains[i/vantages%domains] }
	agentOf := func(i int) int { return i / vantages % agents }
	msgs := make([]*nats.Msg, b.N)
	mine := make([][]int, agents)
	ids := make(map[string]int, b.N)
	for i := range msgs {
		a := agentOf(i)
		agent := fmt.Sprintf("agent%02d", a)
		round := time.Duration(i/(vantages*domains)) * time.Minute
		p := benchProbe(domainOf(i), fmt.Sprintf("r%02d/192.0.2.%d:53", a, i%vantages), benchStart.Add(round), i)
		m, id, err := encodeObservation(r.subject(p.Domain, agent), agent, p)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i], ids[id] = m, i
		mine[a] = append(mine[a], i)
	}
	mu.Lock()
	index = ids
	mu.Unlock()
	want := r.want(msgs, domainOf)
	// Connect every agent before the clock starts, as agents that are
	// already running would be.
	jss := make([]jetstream.JetStream, agents)
	for a := range jss {
		nc, err := nats.Connect(r.url, nats.Name(fmt.Sprintf("agent%02d", a)))
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		// The agent's own bound on publishes awaiting acknowledgement.
		if jss[a], err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512)); err != nil {
			b.Fatal(err)
		}
	}
	last := make([]time.Time, agents) // each agent's last publish
	errs := make([]error, agents)
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	for a, js := range jss {
		wg.Go(func() {
			for j, i := range mine[a] {
				if rate > 0 {
					time.Sleep(time.Until(began.Add(time.Duration(j) * time.Second / time.Duration(rate))))
				}
				sent[i].Store(time.Now().UnixNano())
				if _, err := js.PublishMsgAsync(msgs[i], jetstream.WithStallWait(time.Minute)); err != nil {
					errs[a] = err
					return
				}
			}
			last[a] = time.Now()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	done := r.waitStored(b, want)
	b.StopTimer()
	r.report(b, began, done, want)
	lastPublish := slices.MaxFunc(last, time.Time.Compare)
	b.ReportMetric(float64(b.N)/lastPublish.Sub(began).Seconds(), "published/s")
	lag := slices.MaxFunc(done, time.Time.Compare).Sub(lastPublish)
	b.ReportMetric(float64(lag)/1e6, "lag-ms")
	mu.Lock()
	slices.Sort(delays)
	if len(delays) > 0 {
		b.ReportMetric(float64(delays[len(delays)/2])/1e6, "delay-p50-ms")
		b.ReportMetric(float64(delays[len(delays)*99/100])/1e6, "delay-p99-ms")
	}
	mu.Unlock()
}

// BenchmarkShardMoveScan measures what a shard spends, every status
// interval (5 s by default), looking through its database for domains it
// holds and no longer owns (MoveOut): shard 0 of 2 holding about b.N
// domains, all its own, so the scan finds none. One op is about one
// domain held; ns/domain is exact. Run it with -benchtime=1000000x for a
// figure at a million domains.
func BenchmarkShardMoveScan(b *testing.B) {
	r := startShards(b, 2, 2*b.N, nil)
	ctx := context.Background()
	held, err := r.stores[0].CountDomains()
	if err != nil {
		b.Fatal(err)
	}
	// The first scan warms the page cache and lets the coordinators'
	// own first scans, begun when they started, finish.
	if _, err := r.coords[0].MoveOut(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	began := time.Now()
	moved, err := r.coords[0].MoveOut(ctx)
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	if moved != 0 {
		b.Fatalf("moved %d domains out of a shard that owns them all", moved)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(max(held.Active, 1)), "ns/domain")
	b.ReportMetric(float64(held.Active), "domains")
}
