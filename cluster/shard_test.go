package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Ownership: every name has one shard, a zone and its names share it, and
// going from K to K+1 shards moves only names to the new shard, about
// 1/(K+1) of them.
func TestShardOfMovesOnlyToTheNewShard(t *testing.T) {
	const n = 20000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("host%d.example%d.com", i%7, i)
	}
	for k := 1; k <= 8; k++ {
		counts := make([]int, k+1)
		moved := 0
		for _, name := range names {
			a, b := ShardOf(name, k), ShardOf(name, k+1)
			if a < 0 || a >= k || b < 0 || b > k {
				t.Fatalf("ShardOf(%s) = %d of %d, %d of %d", name, a, k, b, k+1)
			}
			if a != b {
				moved++
				if b != k {
					t.Fatalf("%s moved from shard %d to %d, not to the new shard %d", name, a, b, k)
				}
			}
			counts[b]++
		}
		want := float64(n) / float64(k+1)
		if got := float64(moved); got < 0.9*want || got > 1.1*want {
			t.Errorf("%d → %d shards moved %d names; want about %.0f", k, k+1, moved, want)
		}
		for s, c := range counts {
			if float64(c) < 0.9*want || float64(c) > 1.1*want {
				t.Errorf("%d shards: shard %d owns %d names; want about %.0f", k+1, s, c, want)
			}
		}
	}
	for _, pair := range [][2]string{{"example.com", "www.example.com"}, {"a.b.example.co.uk", "example.co.uk"}, {"Example.COM.", "x.example.com"}} {
		for k := 2; k <= 16; k++ {
			if ShardOf(pair[0], k) != ShardOf(pair[1], k) {
				t.Errorf("%s and %s are on different shards of %d", pair[0], pair[1], k)
			}
		}
	}
}

// shardWorld is a simulated world measured by coordinators and agents
// over one NATS server.
type shardWorld struct {
	t        *testing.T
	ctx      context.Context
	world    *simnet.World
	url      string
	log      *slog.Logger
	domains  []string
	labels   []string
	engine   *crawler.Engine
	template crawler.Crawler
	dir      string
}

func newShardWorld(t *testing.T, ctx context.Context, seed int64) *shardWorld {
	t.Helper()
	log, _ := testLogger(t, slog.LevelWarn)
	world, err := simnet.Start(ctx, simnet.Config{Seed: seed, Speed: clusterSpeed}.WithNetworks())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { world.Close() })
	w := &shardWorld{t: t, ctx: ctx, world: world, url: startNATS(t).ClientURL(), log: log, dir: t.TempDir()}
	for _, d := range world.Domains() {
		w.domains = append(w.domains, d.Name)
	}
	for _, v := range world.Vantages() {
		w.labels = append(w.labels, DefaultRegion+"/"+v)
	}
	w.engine, err = crawler.NewEngine(crawler.EngineOptions{ClientOptions: crawler.ClientOptions{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.engine.Close() })
	w.template = crawler.Crawler{
		NSHosts: true, Delegation: true, ParentPort: world.ParentPort(),
		Direct: crawler.NewClient(crawler.ClientOptions{Timeout: time.Second, NoRecursion: true}),
	}
	return w
}

// coordinator starts the coordinator of shard k of shards on db, with
// prefix; stored collects what it stores.
func (w *shardWorld) coordinator(prefix string, k, shards int, db *storage.Store, stored *idSet) *Coordinator {
	w.t.Helper()
	c, err := NewCoordinator(db, CoordinatorConfig{
		Conn: ConnConfig{URL: w.url}, Prefix: prefix, Shard: k, Shards: shards,
		Lease: time.Hour, MinInterval: clusterRecheck, MaxInterval: clusterRecheck,
		RetryDelay: 200 * time.Millisecond, StatusInterval: 200 * time.Millisecond, MoveBatch: 20, IngestAckWait: 2 * time.Second,
		Now: w.world.Now, Logger: w.log.With("shard", k, "prefix", prefix), OnStored: func(ids []string) { stored.add(ids...) },
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := c.Start(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	if err := c.WaitReady(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	db.SetOwnership(&storage.Ownership{Owns: c.Owns, Elsewhere: c.HandSeeds})
	return c
}

// agent starts an agent of prefix measuring through every vantage.
func (w *shardWorld) agent(prefix, name string, q crawler.Querier, published *idSet) *runningAgent {
	w.t.Helper()
	var vs []scheduler.Vantage
	for _, v := range w.world.Vantages() {
		vs = append(vs, scheduler.Vantage{Addr: v})
	}
	a, err := NewAgent(q, w.template, AgentConfig{
		Conn: ConnConfig{URL: w.url}, Name: name, Prefix: prefix, Vantages: vs,
		InFlight: 8, AckWait: time.Second, PublishTimeout: 2 * time.Second, ResendInterval: 300 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, Outbox: filepath.Join(w.dir, prefix+"-"+name+".outbox"),
		Now: w.world.Now, Logger: w.log, OnPublished: func(id string) { published.add(id) },
	})
	if err != nil {
		w.t.Fatal(err)
	}
	actx, cancel := context.WithCancel(w.ctx)
	r := &runningAgent{agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(actx) }()
	return r
}

// measured waits until every domain of each store was measured through
// every vantage since begin.
func (w *shardWorld) measured(begin time.Time, what string, stores ...*storage.Store) {
	w.t.Helper()
	left := func() []string {
		var out []string
		for k, s := range stores {
			var ds []string
			if err := s.Domains(func(d storage.Domain) error { ds = append(ds, d.Name); return nil }); err != nil {
				return []string{err.Error()}
			}
			m, err := missing(s, ds, w.labels, begin, time.Time{})
			if err != nil {
				return []string{err.Error()}
			}
			for _, x := range m {
				out = append(out, fmt.Sprintf("%s in store %d", x, k))
			}
		}
		return out
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		m := left()
		if len(m) == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s: not measured since %s: %v", what, begin.Format("15:04:05"), m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allDue waits until every domain of the world is due in the stores.
func (w *shardWorld) allDue(stores ...*storage.Store) {
	w.t.Helper()
	waitFor(w.t, 20*time.Second, "every domain due again", func() bool {
		due := 0
		for _, s := range stores {
			d, err := s.Due(w.world.Now())
			if err != nil {
				return false
			}
			due += len(d)
		}
		return due == len(w.domains)
	})
}

// domainsOf returns the names a store holds.
func domainsOf(t *testing.T, s *storage.Store) []string {
	t.Helper()
	var out []string
	if err := s.Domains(func(d storage.Domain) error { out = append(out, d.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// verdictsOf classifies each store at now with c and returns every verdict
// by domain.
func verdictsOf(t *testing.T, ctx context.Context, c *classify.Classifier, now time.Time, stores ...*storage.Store) map[string]classify.Verdict {
	t.Helper()
	out := map[string]classify.Verdict{}
	for _, s := range stores {
		_, err := c.Run(ctx, s, 24*time.Hour, now, func(v classify.Verdict) error {
			if _, dup := out[v.Domain]; dup {
				t.Errorf("%s has a verdict in two shards", v.Domain)
			}
			out[v.Domain] = v
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// networkDomains maps each network's id to its domains.
func networkDomains(nets []networks.Network) map[string][]string {
	out := map[string][]string{}
	for _, n := range nets {
		out[n.ID] = n.Domains
	}
	return out
}

// TestShardedClusterMatchesOneCoordinator measures a simulated world with
// three coordinators, each owning a shard of the domains, and two shared
// agents. (A coordinator measuring the same world beside them would not
// do as the reference: the world changes between two measurements a
// second apart, and a domain that comes alive between them is judged on
// other evidence. The reference is one database holding every
// observation the shards stored, judged as one.) The seeds are added at
// shard 0 alone, which hands the others theirs. Shard 1's coordinator is
// stopped mid-round and a new one started on its database. Every domain
// must be measured through every vantage in every round in its own
// shard; every observation the agents published must be stored, once;
// the verdicts and the merged block list must be the one coordinator's;
// and when shard 2 goes down its entries stay in the feed until they
// expire.
func TestShardedClusterMatchesOneCoordinator(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of simulated crawling")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	w := newShardWorld(t, ctx, 11)
	const shards = 3

	stored, published := &idSet{}, &idSet{}
	dbs := make([]*storage.Store, shards)
	coords := make([]*Coordinator, shards)
	for k := range shards {
		dbs[k] = openStore(t, fmt.Sprintf("shard%d.db", k))
		coords[k] = w.coordinator("", k, shards, dbs[k], stored)
	}
	defer func() {
		for _, c := range coords {
			c.Close()
		}
	}()
	// The seeds reach every shard through shard 0.
	res, err := dbs[0].AddDomains(w.domains, "simnet", w.world.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Added+res.Elsewhere != len(w.domains) || res.Elsewhere == 0 {
		t.Fatalf("shard 0 added %+v of %d seeds", res, len(w.domains))
	}
	want := make([][]string, shards)
	for _, d := range w.domains {
		k := ShardOf(d, shards)
		want[k] = append(want[k], d)
	}
	waitFor(t, 10*time.Second, "every shard to keep its seeds", func() bool {
		for k := range shards {
			if len(domainsOf(t, dbs[k])) != len(want[k]) {
				return false
			}
		}
		return true
	})
	for k := range shards {
		if got := domainsOf(t, dbs[k]); !slices.Equal(got, want[k]) {
			t.Fatalf("shard %d holds %v; owns %v", k, got, want[k])
		}
		if len(want[k]) == 0 {
			t.Fatalf("shard %d owns no domain of the world: the test proves little", k)
		}
	}
	agents := []*runningAgent{w.agent("", "a", w.engine, published), w.agent("", "b", w.engine, published)}
	defer func() {
		for _, a := range agents {
			a.stop(t)
		}
	}()

	const rounds, killRound = 5, 2
	for round := range rounds {
		w.allDue(dbs...)
		begin := w.world.Now()
		for _, c := range coords {
			if _, err := c.Dispatch(ctx); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if round == killRound {
			// Shard 1's coordinator dies while its observations come in;
			// a new one takes them from where it stopped.
			waitFor(t, 10*time.Second, "shard 1 to store some of the round", func() bool {
				m, err := missing(dbs[1], want[1], w.labels, begin, time.Time{})
				return err == nil && len(m) < len(want[1])*len(w.labels)
			})
			coords[1].Close()
			coords[1] = w.coordinator("", 1, shards, dbs[1], stored)
		}
		w.measured(begin, fmt.Sprintf("round %d measured", round), dbs...)
		if wait := clusterInterval - w.world.Now().Sub(begin); wait > 0 {
			w.world.Sleep(ctx, wait)
		}
	}

	// Every observation the shared agents published is stored, once.
	waitFor(t, 20*time.Second, "the published observations to be stored", func() bool {
		for id := range published.snapshot() {
			if !stored.has(id) {
				return false
			}
		}
		return true
	})
	probes := 0
	for k, s := range dbs {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		probes += st.Probes
		for _, d := range domainsOf(t, s) {
			if ShardOf(d, shards) != k {
				t.Errorf("shard %d holds %s, which shard %d owns", k, d, ShardOf(d, shards))
			}
		}
	}
	if probes != stored.len() {
		t.Errorf("the shards hold %d probes for %d distinct observations stored", probes, stored.len())
	}
	for _, c := range coords {
		if s := c.Stats(); s.Rejected != 0 {
			t.Errorf("shard %d rejected %d observations", c.Shard(), s.Rejected)
		}
	}

	// The verdicts and the merged list are what one coordinator makes of
	// the same observations: one database holding every shard's.
	oneDB := openStore(t, "one.db")
	for _, s := range dbs {
		var hs []storage.History
		if err := s.Histories(domainsOf(t, s), func(h storage.History) error { hs = append(hs, h); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := oneDB.PutHistories(hs); err != nil {
			t.Fatal(err)
		}
	}
	c := worldClassifier(t, w.world)
	js := jsClient(t, w.url)
	// Each shard classifies with the cluster's network builder (shard 0,
	// last of each round); two rounds, so that the second associates
	// domains with the networks the first built.
	builders := make([]*ShardNetworks, shards)
	for k := range shards {
		builders[k] = &ShardNetworks{JS: js, Shard: k, Shards: shards, Meta: c.Meta, Logger: w.log}
	}
	classifyShards := func(now time.Time) map[string]classify.Verdict {
		out := map[string]classify.Verdict{}
		for k := shards - 1; k >= 0; k-- {
			ck := *c
			ck.Networks = builders[k]
			for d, v := range verdictsOf(t, ctx, &ck, now, dbs[k]) {
				out[d] = v
			}
		}
		return out
	}
	now := w.world.Now()
	verdictsOf(t, ctx, c, now.Add(-clusterInterval), oneDB)
	classifyShards(now.Add(-clusterInterval))
	single, sharded := verdictsOf(t, ctx, c, now, oneDB), classifyShards(now)
	// The shards that classified before the builder install what it
	// built (the daemon does when the table changes).
	for k := 1; k < shards; k++ {
		if err := builders[k].Prepare(ctx, dbs[k]); err != nil {
			t.Fatal(err)
		}
	}
	oneNets, err := networks.List(oneDB)
	if err != nil {
		t.Fatal(err)
	}
	for k, s := range dbs {
		nets, err := networks.List(s)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(networkDomains(nets), networkDomains(oneNets)) {
			t.Errorf("shard %d holds the networks %v; one database %v", k, networkDomains(nets), networkDomains(oneNets))
		}
	}
	if len(oneNets) == 0 {
		t.Error("no flux network in the world: the networks are not compared")
	}
	flux := 0
	for _, d := range w.domains {
		s, o := sharded[d], single[d]
		if s.Verdict != o.Verdict {
			t.Errorf("%s: shards say %s (%s), one coordinator %s (%s)", d, s.Verdict, s.Evidence, o.Verdict, o.Evidence)
		}
		if classify.IsFlux(o.Verdict) {
			flux++
		}
	}
	if flux == 0 {
		t.Fatal("no flux found: the comparison proves nothing")
	}
	for k, s := range dbs {
		l, err := ReadShardList(s, k, shards, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := PutShardList(ctx, js, DefaultPrefix, l); err != nil {
			t.Fatal(err)
		}
	}
	lists, err := LoadShardLists(ctx, js, DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	oneList, err := ReadShardList(oneDB, 0, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	merged, wantListed := feedNames(MergeLists(lists, now)), feedNames(MergeLists([]ShardList{oneList}, now))
	if len(wantListed) == 0 || !slices.Equal(merged, wantListed) {
		t.Errorf("merged feed lists %v; one coordinator lists %v", merged, wantListed)
	}
	t.Logf("%d domains, %d flux, %d listed; %d observations stored by the shards", len(w.domains), flux, len(merged), stored.len())

	// Shard 2 goes down: its entries stay in the feed until they expire.
	coords[2].Close()
	var down []string
	var expires time.Time
	for _, e := range lists[2].Entries {
		down = append(down, e.Domain())
		if e.Listed.Listing.ExpiresAt.After(expires) {
			expires = e.Listed.Listing.ExpiresAt
		}
	}
	if len(down) == 0 {
		t.Log("shard 2 lists nothing in this world; the downed-shard check is empty")
	}
	later := now.Add(time.Minute)
	for k := range 2 {
		l, err := ReadShardList(dbs[k], k, shards, later)
		if err != nil {
			t.Fatal(err)
		}
		if err := PutShardList(ctx, js, DefaultPrefix, l); err != nil {
			t.Fatal(err)
		}
	}
	if lists, err = LoadShardLists(ctx, js, DefaultPrefix); err != nil {
		t.Fatal(err)
	}
	feed := feedNames(MergeLists(lists, later))
	for _, d := range down {
		if !slices.Contains(feed, d) {
			t.Errorf("%s of the downed shard 2 left the feed before its listing expired", d)
		}
	}
	for _, d := range feedNames(MergeLists(lists, expires.Add(time.Second))) {
		if slices.Contains(down, d) {
			t.Errorf("%s of the downed shard 2 is still in the feed after its listing expired", d)
		}
	}
}

// history is a domain's probes, keyed by start and vantage, for comparing
// a domain before and after a move.
func history(t *testing.T, s *storage.Store, d string) map[string]obs.Probe {
	t.Helper()
	out := map[string]obs.Probe{}
	if err := s.History(d, time.Time{}, time.Time{}, func(p obs.Probe) error {
		out[p.Start.Format(time.RFC3339Nano)+" "+p.Vantage] = p
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestShardReshardMovesOnlyTheDomainsWhoseOwnerChanged measures a world
// with two shards, reshards to three while the agents go on measuring,
// and checks that exactly the domains jump hashing gives the new shard
// moved there, each with every probe it had, that no observation was
// lost or stored twice, and that the verdicts are what they were.
func TestShardReshardMovesOnlyTheDomainsWhoseOwnerChanged(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of simulated crawling")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	w := newShardWorld(t, ctx, 12)
	stored, published := &idSet{}, &idSet{}
	dbs := []*storage.Store{openStore(t, "shard0.db"), openStore(t, "shard1.db"), openStore(t, "shard2.db")}
	coords := []*Coordinator{w.coordinator("", 0, 2, dbs[0], stored), w.coordinator("", 1, 2, dbs[1], stored)}
	defer func() {
		for _, c := range coords {
			c.Close()
		}
	}()
	for _, d := range w.domains {
		if _, err := dbs[ShardOf(d, 2)].AddDomains([]string{d}, "simnet", w.world.Now()); err != nil {
			t.Fatal(err)
		}
	}
	pause := &pausable{q: w.engine}
	agents := []*runningAgent{w.agent("", "a", pause, published), w.agent("", "b", pause, published)}
	defer func() {
		for _, a := range agents {
			a.stop(t)
		}
	}()
	round := func(n int) {
		defer func() {
			if t.Failed() {
				for k, s := range dbs {
					s.Domains(func(d storage.Domain) error {
						t.Logf("DEBUG shard %d %s next %s dark %d (now %s)", k, d.Name, d.NextDue.Format("15:04:05"), d.Dark, w.world.Now().Format("15:04:05"))
						return nil
					})
				}
			}
		}()
		w.allDue(dbs...)
		begin := w.world.Now()
		for _, c := range coords {
			if _, err := c.Dispatch(ctx); err != nil {
				t.Fatal(err)
			}
		}
		w.measured(begin, fmt.Sprintf("round %d measured", n), dbs...)
		if wait := clusterInterval - w.world.Now().Sub(begin); wait > 0 {
			w.world.Sleep(ctx, wait)
		}
	}
	for n := range 3 {
		round(n)
	}

	// Before: every domain's history and verdict.
	c := worldClassifier(t, w.world)
	before := w.world.Now()
	verdicts := verdictsOf(t, ctx, c, before, dbs[:2]...)
	histories := map[string]map[string]obs.Probe{}
	var moving []string
	for _, d := range w.domains {
		histories[d] = history(t, dbs[ShardOf(d, 2)], d)
		if ShardOf(d, 3) != ShardOf(d, 2) {
			moving = append(moving, d)
		}
	}
	if len(moving) == 0 {
		t.Fatal("no domain changes owner from 2 to 3 shards in this world")
	}

	// Reshard to three while a round is being measured: the old shards
	// dispatch it, the agents hold it until the domains have moved, so the
	// observations of moved domains arrive at shards that no longer hold
	// them and must be forwarded.
	w.allDue(dbs...)
	begin := w.world.Now()
	pause.hold()
	for _, c := range coords {
		if _, err := c.Dispatch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	js := jsClient(t, w.url)
	m, err := Reshard(ctx, js, "", 3, w.world.Now())
	if err != nil || m.Shards != 3 || m.From != 2 {
		t.Fatalf("Reshard = %+v, %v", m, err)
	}
	if _, err := Reshard(ctx, js, "", 4, w.world.Now()); err == nil {
		t.Error("a second reshard started while the first was in progress")
	}
	coords = append(coords, w.coordinator("", 2, 3, dbs[2], stored))
	waitFor(t, 30*time.Second, "the reshard to end", func() bool {
		st, ok, err := LoadClusterState(ctx, js, "")
		return err == nil && ok && !st.Map.Moving() && st.Map.Shards == 3
	})
	pause.release()
	w.measured(begin, "the round dispatched before the move measured", dbs...)
	forwarded := 0
	for _, c := range coords {
		forwarded += int(c.Stats().Forwarded)
	}
	if forwarded == 0 {
		t.Error("no observation was forwarded to the new owner of its domain")
	}
	round(4)

	// Exactly the domains whose owner changed moved, each with every
	// probe it had.
	for k, s := range dbs {
		for _, d := range domainsOf(t, s) {
			if ShardOf(d, 3) != k {
				t.Errorf("shard %d holds %s, which shard %d owns", k, d, ShardOf(d, 3))
			}
		}
	}
	if got := domainsOf(t, dbs[2]); !slices.Equal(got, moving) {
		t.Errorf("shard 2 holds %v; the domains that changed owner are %v", got, moving)
	}
	for _, d := range w.domains {
		now := history(t, dbs[ShardOf(d, 3)], d)
		for key, p := range histories[d] {
			q, ok := now[key]
			if !ok {
				t.Errorf("%s lost its probe %s in the move", d, key)
				continue
			}
			if !probeEqual(p, q) {
				t.Errorf("%s: probe %s changed in the move:\n%+v\n%+v", d, key, p, q)
			}
		}
	}
	// No observation lost, none stored twice.
	waitFor(t, 20*time.Second, "the published observations to be stored", func() bool {
		for id := range published.snapshot() {
			if !stored.has(id) {
				return false
			}
		}
		return true
	})
	probes := 0
	for _, s := range dbs {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		probes += st.Probes
	}
	if probes != stored.len() {
		t.Errorf("the shards hold %d probes for %d distinct observations stored", probes, stored.len())
	}
	// The same verdicts on the same evidence.
	after := verdictsOf(t, ctx, c, before, dbs...)
	for _, d := range w.domains {
		if after[d].Verdict != verdicts[d].Verdict {
			t.Errorf("%s: %s before the move, %s after", d, verdicts[d].Verdict, after[d].Verdict)
		}
	}
	moved := 0
	for _, c := range coords {
		moved += int(c.movedOut.Load())
	}
	if moved != len(moving) {
		t.Errorf("the shards handed over %d domains; %d changed owner", moved, len(moving))
	}
	t.Logf("%d domains, %d moved to shard 2 (%s of them), %d observations stored", len(w.domains), len(moving),
		fmt.Sprintf("%.0f%%", 100*float64(len(moving))/float64(len(w.domains))), stored.len())
}

// pausable passes queries through to q, but while held makes them wait
// for the release.
type pausable struct {
	q       crawler.Querier
	mu      sync.Mutex
	release func()
	gate    chan struct{}
}

func (p *pausable) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	p.gate, p.release = ch, sync.OnceFunc(func() { close(ch) })
}

func (p *pausable) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return p.q.Query(ctx, vantage, name, qtype)
}

// probeEqual compares two probes as stored.
func probeEqual(a, b obs.Probe) bool {
	if a.Domain != b.Domain || a.Vantage != b.Vantage || !a.Start.Equal(b.Start) || len(a.Observations) != len(b.Observations) {
		return false
	}
	ka, kb := map[string]bool{}, map[string]bool{}
	for i := range a.Observations {
		ka[fmt.Sprintf("%+v", a.Observations[i])] = true
		kb[fmt.Sprintf("%+v", b.Observations[i])] = true
	}
	return maps.Equal(ka, kb)
}

// An observation of a domain being handed to another shard is not stored
// while the hand-over runs (its history has been read: a probe stored now
// would be deleted unsent); it is given back, and stored by a later
// delivery once the domain is no longer moving.
func TestShardIngestGivesBackObservationsOfMovingDomains(t *testing.T) {
	srv := startNATS(t)
	store := openStore(t, "c.db")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := store.AddDomains([]string{"moving.example", "staying.example"}, "t", now); err != nil {
		t.Fatal(err)
	}
	c := startCoordinator(t, store, CoordinatorConfig{Conn: ConnConfig{URL: srv.ClientURL()}, RetryDelay: 100 * time.Millisecond,
		Now: func() time.Time { return now }})
	js := jsClient(t, srv.ClientURL())
	c.commitMu.Lock()
	c.moving.Store("moving.example", true)
	c.commitMu.Unlock()
	publishObservation(t, js, testProbe("moving.example", "eu/192.0.2.53:53", now, "198.51.100.1"), "")
	publishObservation(t, js, testProbe("staying.example", "eu/192.0.2.53:53", now, "198.51.100.2"), "")
	waitFor(t, 10*time.Second, "the other domain's observation stored", func() bool { return c.Stats().Stored == 1 })
	waitFor(t, 10*time.Second, "the moving domain's observation given back twice", func() bool { return c.Stats().Retried >= 2 })
	if st, _ := store.Stats(); st.Probes != 1 {
		t.Fatalf("%d probes stored while a domain was moving; want the other domain's one", st.Probes)
	}
	c.moving.Delete("moving.example")
	waitFor(t, 10*time.Second, "the observation stored once the move is over", func() bool {
		st, _ := store.Stats()
		return st.Probes == 2
	})
}
