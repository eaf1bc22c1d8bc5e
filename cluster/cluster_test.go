package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The simulated world of the cluster test: rounds as far apart as the
// demo's, on a faster clock.
const (
	clusterSpeed    = 120
	clusterRounds   = 8
	clusterInterval = 3 * time.Minute // simulated
	clusterRecheck  = 10 * time.Second
)

// runningAgent is an agent of the test and the means to stop it.
type runningAgent struct {
	agent  *Agent
	cancel context.CancelFunc
	done   chan error
}

func (r *runningAgent) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("agent %s: %v", r.agent.cfg.Name, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("agent %s did not stop", r.agent.cfg.Name)
	}
}

// TestClusterMatchesSingleMachineCrawl measures a simulated world with a
// coordinator and three agents in two regions over an in-process NATS
// server while a single machine crawls the same world with the local
// scheduler. One agent of the east region is killed mid-round (its
// context cancelled, its connection closed without draining), the only
// agent of the west region is stopped and replaced by a new one on the
// same outbox. Every domain must still be measured through every vantage
// in every round, every observation JetStream acknowledged must be
// stored, none stored twice, and the verdicts must be the single
// machine's.
func TestClusterMatchesSingleMachineCrawl(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of simulated crawling")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	log, _ := testLogger(t, slog.LevelWarn)
	world, err := simnet.Start(ctx, simnet.Config{Seed: 11, Speed: clusterSpeed})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	srv := startNATS(t)
	url := srv.ClientURL()

	var domains []string
	for _, d := range world.Domains() {
		domains = append(domains, d.Name)
	}
	clusterDB, localDB := openStore(t, "cluster.db"), openStore(t, "local.db")
	for _, s := range []*storage.Store{clusterDB, localDB} {
		if _, err := s.AddDomains(domains, "simnet", world.Now()); err != nil {
			t.Fatal(err)
		}
	}
	engine, err := crawler.NewEngine(crawler.EngineOptions{ClientOptions: crawler.ClientOptions{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	template := crawler.Crawler{
		NSHosts: true, Delegation: true, ParentPort: world.ParentPort(),
		Direct: crawler.NewClient(crawler.ClientOptions{Timeout: time.Second, NoRecursion: true}),
	}

	// The coordinator sends every domain to both regions each round.
	stored := &idSet{}
	coord, err := NewCoordinator(clusterDB, CoordinatorConfig{
		Conn: ConnConfig{URL: url}, Targets: []string{"region:east", "region:west"},
		Lease: time.Hour, MinInterval: clusterRecheck, MaxInterval: clusterRecheck,
		Now: world.Now, Logger: log, OnStored: func(ids []string) { stored.add(ids...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	if err := coord.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	vantages := world.Vantages()
	regions := map[string][]string{"east": vantages[:len(vantages)/2], "west": vantages[len(vantages)/2:]}
	var labels []string
	for region, vs := range regions {
		for _, v := range vs {
			labels = append(labels, region+"/"+v)
		}
	}
	sort.Strings(labels)
	published := &idSet{}
	dir := t.TempDir()
	start := func(name, region string, q crawler.Querier) *runningAgent {
		var vs []scheduler.Vantage
		for _, v := range regions[region] {
			vs = append(vs, scheduler.Vantage{Addr: v})
		}
		a, err := NewAgent(q, template, AgentConfig{
			Conn: ConnConfig{URL: url}, Name: name, Region: region, Vantages: vs,
			InFlight: 8, AckWait: time.Second, PublishTimeout: 2 * time.Second, ResendInterval: 300 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond, Outbox: filepath.Join(dir, name+".outbox"),
			Now: world.Now, Logger: log, OnPublished: func(id string) { published.add(id) },
		})
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithCancel(ctx)
		r := &runningAgent{agent: a, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- a.Run(actx) }()
		return r
	}
	// east-1 and the first west-1 go through gates that, when closed,
	// hold every query until the agent is stopped: an agent that dies
	// while it holds work.
	east1Gate, westGate := &gate{q: engine}, &gate{q: engine}
	east1, east2, west := start("east-1", "east", east1Gate), start("east-2", "east", engine), start("west-1", "west", westGate)
	defer func() {
		for _, r := range []*runningAgent{east2, west} {
			r.stop(t)
		}
	}()

	// The single machine: the local scheduler over all the vantages.
	var all []scheduler.Vantage
	for _, v := range vantages {
		all = append(all, scheduler.Vantage{Addr: v})
	}
	sched := scheduler.New(engine, template, localDB, scheduler.Options{Vantages: all, Workers: 16,
		MinInterval: clusterRecheck, MaxInterval: clusterRecheck, Now: world.Now})
	localW := localDB.NewWriter(storage.WriterOptions{MaxDelay: 50 * time.Millisecond})

	var windows []time.Time // start of each round, and the end
	var resent []string     // IDs left in west-1's outbox though already stored
	const killRound, restartRound = 2, 4
	for round := range clusterRounds {
		waitFor(t, 20*time.Second, "every domain due again", func() bool {
			due, err := clusterDB.Due(world.Now())
			return err == nil && len(due) == len(domains)
		})
		begin := world.Now()
		windows = append(windows, begin)
		var wg sync.WaitGroup
		var localErr error
		wg.Go(func() {
			if _, err := sched.Round(ctx, domains, localW); err != nil {
				localErr = err
			}
			if err := localW.Flush(); err != nil && localErr == nil {
				localErr = err
			}
		})
		switch round {
		case killRound:
			east1Gate.hold.Store(true)
		case restartRound:
			westGate.hold.Store(true)
		}
		st, err := coord.Dispatch(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if st.Domains != len(domains) || st.Published != 2*len(domains) {
			t.Fatalf("round %d: dispatched %+v, want %d domains to two regions", round, st, len(domains))
		}
		switch round {
		case killRound:
			// Kill east-1 while it holds work: east-2 must do it.
			waitFor(t, 10*time.Second, "east-1 to hold work", func() bool { return east1.agent.inFlight.Load() > 0 })
			east1.stop(t)
		case restartRound:
			// Stop west-1 while it holds work, as if it crashed after
			// JetStream acknowledged some observations but before it
			// deleted them from its outbox; a new west-1 on the same
			// outbox sends them again, and must do the held work.
			waitFor(t, 10*time.Second, "west-1 to hold work", func() bool { return west.agent.inFlight.Load() > 0 })
			west.stop(t)
			resent = leaveInOutbox(t, clusterDB, filepath.Join(dir, "west-1.outbox"), "west-1", domains[:5])
			west = start("west-1", "west", engine)
		}
		waitFor(t, 30*time.Second, "every domain measured through every vantage", func() bool {
			// A read racing a commit can fail on a name the commit has
			// just interned (storage publishes interned names after the
			// commit); it is read again on the next poll.
			m, err := missing(clusterDB, domains, labels, begin, time.Time{})
			return err == nil && len(m) == 0
		})
		wg.Wait()
		if localErr != nil {
			t.Fatal(localErr)
		}
		if wait := clusterInterval - world.Now().Sub(begin); wait > 0 {
			world.Sleep(ctx, wait)
		}
	}
	windows = append(windows, world.Now())
	if err := localW.Close(); err != nil {
		t.Fatal(err)
	}

	// Every observation JetStream acknowledged is stored, and the ingest
	// has caught up with what the survivors published.
	waitFor(t, 20*time.Second, "the published observations to be stored", func() bool {
		for id := range published.snapshot() {
			if !stored.has(id) {
				return false
			}
		}
		return true
	})
	waitFor(t, 10*time.Second, "the survivors' outboxes to empty", func() bool {
		return east2.agent.Heartbeat().OutboxPending == 0 && west.agent.Heartbeat().OutboxPending == 0
	})

	// The work the dead agents held was done by the others.
	if n := east2.agent.Heartbeat().WorkRedelivered; n == 0 {
		t.Error("east-2 was handed none of the work east-1 held when killed")
	}
	if n := west.agent.Heartbeat().WorkRedelivered; n == 0 {
		t.Error("the new west-1 was handed none of the work the old one held")
	}
	if h := west.agent.Heartbeat(); h.Published < int64(len(resent)) {
		t.Errorf("the new west-1 published %d observations; its outbox held %d", h.Published, len(resent))
	}

	// Every round, every domain, every vantage.
	for r := 0; r+1 < len(windows); r++ {
		m, err := missing(clusterDB, domains, labels, windows[r], windows[r+1])
		if err != nil {
			t.Fatal(err)
		}
		if len(m) > 0 {
			t.Errorf("round %d: not measured: %v", r, m)
		}
	}
	// Stored once: one probe in the database per distinct ID, however
	// often it was delivered.
	cs := coord.Stats()
	dbStats, err := clusterDB.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if dbStats.Probes != stored.len() {
		t.Errorf("database holds %d probes for %d distinct observation IDs stored", dbStats.Probes, stored.len())
	}
	if int64(stored.len()) > cs.Stored || cs.Rejected != 0 {
		t.Errorf("coordinator stats %+v for %d distinct IDs", cs, stored.len())
	}
	// The killed agent's outbox: what it holds was published or was never
	// acknowledged as work (and was measured again).
	box, err := OpenOutbox(filepath.Join(dir, "east-1.outbox"), OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	left, _ := box.Pending(0, 1<<20)
	box.Close()
	unsent := 0
	for _, e := range left {
		if !stored.has(e.ID) {
			unsent++
		}
	}
	t.Logf("cluster: %d observations stored (%d deliveries, %d redelivered), %d published; killed agent's outbox holds %d (%d never stored)",
		stored.len(), cs.Received, cs.Redelivered, published.len(), len(left), unsent)

	// Agents reported in.
	seen := map[string]bool{}
	for _, a := range coord.Agents() {
		seen[a.Agent] = true
		if a.Received.IsZero() || len(a.Vantages) != 2 {
			t.Errorf("agent status %+v", a)
		}
	}
	for _, name := range []string{"east-1", "east-2", "west-1"} {
		if !seen[name] {
			t.Errorf("no heartbeat from %s; have %v", name, coord.Agents())
		}
	}

	// The same verdicts as the single machine.
	c := worldClassifier(t, world)
	now := world.Now()
	verdicts := func(s *storage.Store) map[string]classify.Verdict {
		out := map[string]classify.Verdict{}
		if _, err := c.Run(ctx, s, 24*time.Hour, now, func(v classify.Verdict) error { out[v.Domain] = v; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	remote, local := verdicts(clusterDB), verdicts(localDB)
	if len(remote) != len(domains) || len(local) != len(domains) {
		t.Fatalf("%d cluster and %d local verdicts for %d domains", len(remote), len(local), len(domains))
	}
	agree, flux := 0, 0
	for _, d := range domains {
		r, l := remote[d], local[d]
		if r.Verdict != l.Verdict {
			truth, _ := world.Truth(d)
			t.Errorf("%s (%s): cluster says %s (%s), single machine %s (%s)", d, truth.Kind, r.Verdict, r.Evidence, l.Verdict, l.Evidence)
			continue
		}
		agree++
		if classify.IsFlux(r.Verdict) {
			flux++
		}
	}
	if flux == 0 {
		t.Error("no flux found: the comparison proves nothing")
	}
	t.Logf("verdicts: %d of %d agree, %d flux", agree, len(domains), flux)
}

// gate passes queries through to q, or holds them until their context
// ends while hold is set.
type gate struct {
	q    crawler.Querier
	hold atomic.Bool
}

func (g *gate) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if g.hold.Load() {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	return g.q.Query(ctx, vantage, name, qtype)
}

var _ crawler.Querier = (*gate)(nil)

// leaveInOutbox puts the stored observations of agent's region vantages
// for domains back into the agent's outbox, as a crash between
// JetStream's acknowledgement and the outbox deletion leaves them, and
// returns their IDs.
func leaveInOutbox(t *testing.T, s *storage.Store, path, agent string, domains []string) []string {
	t.Helper()
	box, err := OpenOutbox(path, OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	var entries []OutboxEntry
	for _, d := range domains {
		err := s.History(d, time.Time{}, time.Time{}, func(p obs.Probe) error {
			if !strings.HasPrefix(p.Vantage, "west/") {
				return nil
			}
			m, id, err := encodeObservation("fluxwatch.obs."+agent, agent, p)
			if err != nil {
				return err
			}
			entries = append(entries, OutboxEntry{ID: id, Subject: m.Subject, Data: m.Data})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := box.Put(entries); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	return ids
}

// missing lists the domain and vantage pairs with no probe whose start
// lies in [from, to) (to zero: no end).
func missing(s *storage.Store, domains, vantages []string, from, to time.Time) ([]string, error) {
	var out []string
	for _, d := range domains {
		seen := map[string]bool{}
		if err := s.History(d, from, to, func(p obs.Probe) error { seen[p.Vantage] = true; return nil }); err != nil {
			return nil, err
		}
		for _, v := range vantages {
			if !seen[v] {
				out = append(out, d+"@"+v)
			}
		}
	}
	return out, nil
}

// worldClassifier classifies with the world's ASN table and allowlist, as
// the demo does.
func worldClassifier(t *testing.T, world *simnet.World) *classify.Classifier {
	t.Helper()
	var asn bytes.Buffer
	if err := world.WriteASNTable(&asn); err != nil {
		t.Fatal(err)
	}
	table, err := ipmeta.Load(&asn, "asn.tsv")
	if err != nil {
		t.Fatal(err)
	}
	meta := &ipmeta.DB{}
	meta.AddASN(table)
	var allow bytes.Buffer
	if err := world.WriteAllowlist(&allow); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "allowlist.txt")
	if err := os.WriteFile(path, allow.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	al, err := classify.LoadAllowlist(path)
	if err != nil {
		t.Fatal(err)
	}
	return &classify.Classifier{Meta: meta, Allow: al, CDNSuffixes: classify.DefaultCDNSuffixes}
}
