package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// shardPool returns n agents of one simulated botnet: 203.<net>.x.y.
func shardPool(net byte, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{203, net, byte(i / 250), byte(1 + i%250)})
	}
	return out
}

// shardDomain is one domain of the synthetic cluster: a flux member, or a
// name not judged flux with its addresses.
type shardDomain struct {
	shard  int
	member *networks.Member
	addrs  []netip.Addr // not flux: its addresses
}

func flux(shard int, name string, at time.Time, agents ...[]netip.Addr) shardDomain {
	m := networks.Member{Domain: name, Agents: slices.Concat(agents...), FirstSeen: at.Add(-time.Hour), LastSeen: at}
	slices.SortFunc(m.Agents, netip.Addr.Compare)
	m.Agents = slices.Compact(m.Agents)
	m.Latest = m.Agents[:min(3, len(m.Agents))]
	return shardDomain{shard: shard, member: &m}
}

func nonFlux(shard int, addrs []netip.Addr) shardDomain {
	return shardDomain{shard: shard, addrs: addrs}
}

// oneMachine builds the networks of every domain in one store, as a
// single machine's run does.
func oneMachine(t *testing.T, store *storage.Store, domains []shardDomain, now time.Time) []networks.Network {
	t.Helper()
	stats := networks.StatsFor(len(domains))
	var members []networks.Member
	for _, d := range domains {
		if d.member != nil {
			members = append(members, *d.member)
		} else {
			stats.Add(d.addrs, false)
		}
	}
	nets, err := networks.Update(store, members, stats, now, networks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return nets
}

// shardRunOf is what shard k's run finds among domains, its stats sized as
// a run sizes them with sn as its builder.
func shardRunOf(sn *ShardNetworks, domains []shardDomain, now time.Time) classify.NetworkRun {
	run := classify.NetworkRun{Now: now}
	var other [][]netip.Addr
	for _, d := range domains {
		if d.shard != sn.Shard {
			continue
		}
		run.Active++
		if d.member != nil {
			run.Members = append(run.Members, *d.member)
		} else {
			other = append(other, d.addrs)
		}
	}
	run.Stats = networks.StatsFor(sn.StatsSize(run.Active))
	for _, a := range other {
		run.Stats.Add(a, false)
	}
	return run
}

func listJSON(t *testing.T, store *storage.Store) string {
	t.Helper()
	nets, err := networks.List(store)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(nets, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// byIDs names each stored network's domains: "net-1: a b; net-2: c".
func byIDs(t *testing.T, store *storage.Store) string {
	t.Helper()
	nets, err := networks.List(store)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, n := range nets {
		parts = append(parts, n.ID+": "+strings.Join(n.Domains, " "))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// Three shards' runs build the networks one machine builds over all their
// domains: the same networks, ids, logs and sizes in every shard's
// database, round after round, whatever the order of the runs in a round
// (a watching builder waits for the shards that run after it). A network
// whose domains live on all three shards is one network, and addresses
// only the merged safeguard stats show as shared keep two networks apart.
func TestShardNetworksEqualOneMachine(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv := startNATS(t)
	js := jsClient(t, srv.ClientURL())
	log, _ := testLogger(t, 0)
	stores := []*storage.Store{openStore(t, "s0.db"), openStore(t, "s1.db"), openStore(t, "s2.db")}
	single := openStore(t, "one.db")
	shards := make([]*ShardNetworks, 3)
	for k := range shards {
		shards[k] = &ShardNetworks{JS: js, Shard: k, Shards: 3, Logger: log}
	}

	x, y, w := shardPool(1, 200), shardPool(2, 200), shardPool(3, 200)
	// Three addresses of a parking service: two small members of each
	// network resolve to them too, enough to link the networks into one,
	// unless the safeguards see that three names not judged flux, one on
	// each shard, resolved to them (more than MaxNonFlux, 2): each shard
	// alone saw one.
	parking := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	round1 := []shardDomain{
		flux(0, "a1.test", t0, x[0:100]), flux(1, "a2.test", t0, x[50:150]), flux(2, "a3.test", t0, x[100:200]),
		flux(0, "a4.test", t0, x[50:58], parking), flux(1, "a5.test", t0, x[60:68], parking),
		flux(1, "b1.test", t0, y[0:100]), flux(1, "b2.test", t0, y[50:150]),
		flux(1, "b3.test", t0, y[0:8], parking), flux(2, "b4.test", t0, y[60:68], parking),
		nonFlux(0, parking), nonFlux(1, parking), nonFlux(2, parking),
		nonFlux(0, []netip.Addr{netip.MustParseAddr("192.0.2.7")}),
	}
	var all []networks.Member
	for _, d := range round1 {
		if d.member != nil {
			all = append(all, *d.member)
		}
	}
	if g := networks.Group(all, nil, networks.DefaultRules); len(g) != 1 {
		t.Fatalf("without the safeguards the parking addresses should join the networks (%d groups): the test would prove nothing", len(g))
	}

	// round hands each shard's run of domains to its builder, in the
	// given order, and returns what each counted.
	round := func(domains []shardDomain, now time.Time, order ...int) map[int]int {
		t.Helper()
		built := map[int]int{}
		for _, k := range order {
			n, err := shards[k].Build(ctx, stores[k], shardRunOf(shards[k], domains, now))
			if err != nil {
				t.Fatalf("shard %d: %v", k, err)
			}
			built[k] = n
		}
		return built
	}
	// prepare has the shards other than the builder prepare their next run.
	prepare := func() {
		t.Helper()
		for k := 1; k < 3; k++ {
			if err := shards[k].Prepare(ctx, stores[k]); err != nil {
				t.Fatalf("shard %d: %v", k, err)
			}
		}
	}
	same := func(when string) {
		t.Helper()
		want := listJSON(t, single)
		wantSeq, _ := single.NetworkSequence()
		for k, s := range stores {
			if got := listJSON(t, s); got != want {
				t.Errorf("%s: shard %d holds\n%s\none machine\n%s", when, k, got, want)
			}
			if seq, _ := s.NetworkSequence(); seq != wantSeq {
				t.Errorf("%s: shard %d's id sequence %d, one machine's %d", when, k, seq, wantSeq)
			}
		}
	}

	// Round 1: the builder last.
	built := round(round1, t0, 1, 2, 0)
	prepare()
	nets := oneMachine(t, single, round1, t0)
	same("round 1")
	if got, want := byIDs(t, single), "net-1: a1.test a2.test a3.test a4.test a5.test; net-2: b1.test b2.test b3.test b4.test"; got != want {
		t.Errorf("one machine's networks: %s, want %s", got, want)
	}
	if built[0] != len(nets) {
		t.Errorf("the builder counted %d networks, one machine %d", built[0], len(nets))
	}
	if n, err := networks.Of(stores[2], "a2.test"); err != nil || n == nil || !slices.Contains(n.Domains, "a1.test") || !slices.Contains(n.Domains, "a3.test") {
		t.Errorf("shard 2 sees a2.test (shard 1) in %+v (%v): want the network of a1.test (shard 0) and a3.test (shard 2)", n, err)
	}

	// Round 2: a1 stops fluxing, a network of two shards appears, B grows
	// on another shard; the builder, watching, runs first and the others
	// after it: it builds when the last of them has run.
	t1 := t0.Add(time.Hour)
	round2 := slices.Concat(slices.Delete(slices.Clone(round1), 0, 1), []shardDomain{
		flux(0, "c1.test", t1, w[0:60]), flux(2, "c2.test", t1, w[30:90]),
		flux(2, "b5.test", t1, y[100:160]),
	})
	for i := range round2 { // the rest are seen again
		if m := round2[i].member; m != nil {
			c := *m
			c.LastSeen = t1
			round2[i].member = &c
		}
	}
	// roundBuilt reports whether the builder built (and put) its round.
	roundBuilt := func() bool {
		shards[0].mu.Lock()
		defer shards[0].mu.Unlock()
		return shards[0].round.built
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() { watched <- shards[0].Watch(watchCtx, stores[0]) }()
	waitFor(t, 10*time.Second, "the builder to watch", func() bool {
		shards[0].mu.Lock()
		defer shards[0].mu.Unlock()
		return shards[0].watching
	})
	round(round2, t1, 0, 1, 2)
	oneMachine(t, single, round2, t1)
	want := byIDs(t, single)
	waitFor(t, 10*time.Second, "the builder to build with the shards that ran after it", roundBuilt)
	if got := byIDs(t, stores[0]); got != want {
		t.Errorf("round 2: the builder holds %s, one machine %s", got, want)
	}
	prepare()
	same("round 2, the builder first")
	if !strings.Contains(want, "net-3: c1.test c2.test") {
		t.Errorf("one machine's networks: %s; want net-3 for c1 (shard 0) and c2 (shard 2)", want)
	}

	// Round 3: shard 1 runs before the builder, shard 2 after it. Shard
	// 1's run is the round's: the watch must not rebuild the last round
	// with it, and the builder waits for shard 2 alone.
	t2 := t1.Add(time.Hour)
	round3 := slices.Concat(round2, []shardDomain{flux(1, "c3.test", t2, w[40:100])})
	round(round3, t2, 1)
	time.Sleep(200 * time.Millisecond) // time for a wrong rebuild to happen
	if got := listJSON(t, stores[0]); got != listJSON(t, single) {
		t.Errorf("the builder rebuilt round 2 with shard 1's run of round 3:\n%s", got)
	}
	round(round3, t2, 0, 2)
	oneMachine(t, single, round3, t2)
	waitFor(t, 10*time.Second, "the builder to build with shard 2", roundBuilt)
	prepare()
	same("round 3, the builder between")
	stopWatch()
	if err := <-watched; err != nil {
		t.Errorf("watch: %v", err)
	}

	// What the object store holds.
	b, err := js.ObjectStore(ctx, "FLUXWATCH_NETS")
	if err != nil {
		t.Fatal(err)
	}
	infos, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, info := range infos {
		names = append(names, info.Name)
		t.Logf("%s: %d bytes", info.Name, info.Size)
	}
	slices.Sort(names)
	if want := []string{"members-0", "members-1", "members-2", "networks"}; !slices.Equal(names, want) {
		t.Errorf("objects %v, want %v", names, want)
	}
}

// A shard that is not the builder refuses to build; a shard outside the
// cluster is refused.
func TestShardNetworksRoles(t *testing.T) {
	srv := startNATS(t)
	js := jsClient(t, srv.ClientURL())
	store := openStore(t, "s.db")
	other := &ShardNetworks{JS: js, Shard: 1, Shards: 2}
	if _, err := other.Rebuild(t.Context(), store); err != ErrNotBuilder {
		t.Errorf("rebuild on shard 1 of 2: %v, want ErrNotBuilder", err)
	}
	if err := other.Watch(t.Context(), store); err != ErrNotBuilder {
		t.Errorf("watch on shard 1 of 2: %v, want ErrNotBuilder", err)
	}
	for _, bad := range []*ShardNetworks{{JS: js, Shard: 3, Shards: 3}, {JS: js, Shard: 0, Shards: 2, Builder: 2}, {Shard: 0}} {
		if err := bad.Prepare(t.Context(), store); err == nil {
			t.Errorf("shard %d of %d, builder %d: prepared", bad.Shard, bad.Shards, bad.Builder)
		}
	}
}

// Classification runs on three shards of a simulated world with flux
// networks give the verdicts one machine gives (association with a known
// network included: its evidence names the network's id) and the same
// networks, run after run. The world is measured once into one database
// and each domain's probes copied to its shard; then runs as of every
// thirty simulated seconds replay the measurement, so that each newer
// domain of a network is judged on its first round alone, when only
// association can make it flux, whatever the pace of the crawl.
func TestShardClassifyMatchesOneMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("sixteen simulated minutes of crawling")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	world, err := simnet.Start(ctx, simnet.Config{Seed: 8, Speed: 300}.WithNetworks())
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	srv := startNATS(t)
	js := jsClient(t, srv.ClientURL())
	log, _ := testLogger(t, slog.LevelInfo)

	const k = 3
	single := openStore(t, "one.db")
	stores := make([]*storage.Store, k)
	for i := range stores {
		stores[i] = openStore(t, fmt.Sprintf("shard%d.db", i))
	}
	var domains []string
	byShard := make([][]string, k)
	for _, d := range world.Domains() {
		domains = append(domains, d.Name)
		byShard[ShardOf(d.Name, k)] = append(byShard[ShardOf(d.Name, k)], d.Name)
	}
	start := world.Now()
	if _, err := single.AddDomains(domains, "simnet", start); err != nil {
		t.Fatal(err)
	}
	for i, names := range byShard {
		if _, err := stores[i].AddDomains(names, "simnet", start); err != nil {
			t.Fatal(err)
		}
	}

	// Sixteen rounds a simulated minute apart; newer domains start from
	// the fourth minute.
	var vantages []scheduler.Vantage
	for _, v := range world.Vantages() {
		vantages = append(vantages, scheduler.Vantage{Addr: v})
	}
	opts := crawler.ClientOptions{Timeout: time.Second}
	direct := opts
	direct.NoRecursion = true
	cr := crawler.Crawler{NSHosts: true, Delegation: true, Direct: crawler.NewClient(direct), ParentPort: world.ParentPort()}
	sched := scheduler.New(crawler.NewClient(opts), cr, single, scheduler.Options{Vantages: vantages, Workers: 8, Now: world.Now, Logger: slog.New(slog.DiscardHandler)})
	w := single.NewWriter(storage.WriterOptions{})
	if _, err := sched.Run(ctx, scheduler.Plan{Rounds: 16, Interval: time.Minute, Sleep: world.Sleep, Domains: func() ([]string, error) { return domains, nil }}, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	end := world.Now()
	for i, names := range byShard {
		var probes []obs.Probe
		for _, d := range names {
			if err := single.History(d, time.Time{}, time.Time{}, func(p obs.Probe) error { probes = append(probes, p); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := stores[i].WriteProbes(probes); err != nil {
			t.Fatal(err)
		}
	}

	base := worldClassifier(t, world)
	classifiers := make([]*classify.Classifier, k)
	for i := range classifiers {
		c := *base
		c.Networks = &ShardNetworks{JS: js, Shard: i, Shards: k, Meta: base.Meta, Logger: log}
		classifiers[i] = &c
	}
	verdicts := func(c *classify.Classifier, s *storage.Store, now time.Time, into map[string]string) map[string]int {
		t.Helper()
		counts, err := c.Run(ctx, s, 24*time.Hour, now, func(v classify.Verdict) error {
			b, err := json.Marshal(v)
			into[v.Domain] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	// Association with a network whose other domains lie on other shards
	// is what the shards cannot do alone.
	associated, across, listed, runs := map[string]bool{}, map[string]bool{}, 0, 0
	for now := start.Add(30 * time.Second); !now.After(end); now = now.Add(30 * time.Second) {
		runs++
		known, err := networks.List(single)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		counts := verdicts(base, single, now, want)
		got := map[string]string{}
		for _, i := range []int{1, 2, 0} { // the builder last
			verdicts(classifiers[i], stores[i], now, got)
		}
		for _, d := range domains {
			if got[d] != want[d] {
				t.Errorf("run %d, %s (shard %d):\nshard       %s\none machine %s", runs, d, ShardOf(d, k), got[d], want[d])
			}
		}
		if len(got) != len(want) {
			t.Errorf("run %d: %d verdicts on the shards, %d on one machine", runs, len(got), len(want))
		}
		wantNets := listJSON(t, single)
		for i, s := range stores {
			if i != 0 {
				if err := classifiers[i].Networks.Prepare(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if gotNets := listJSON(t, s); gotNets != wantNets {
				t.Errorf("run %d: shard %d's networks\n%s\none machine's\n%s", runs, i, gotNets, wantNets)
			}
		}
		if t.Failed() {
			return
		}
		for d, j := range want {
			var v classify.Verdict
			if err := json.Unmarshal([]byte(j), &v); err != nil {
				t.Fatal(err)
			}
			if v.NetworkAgentsSeen == 0 {
				continue
			}
			associated[d] = true
			for _, n := range known {
				if n.ID == v.Network && slices.ContainsFunc(n.Domains, func(o string) bool { return ShardOf(o, k) != ShardOf(d, k) }) {
					across[d] = true
				}
			}
		}
		listed = counts[classify.SingleFlux] + counts[classify.DoubleFlux]
	}
	// The comparison proved something: flux was found, a network's
	// domains lay on several shards, and association with the domains of
	// other shards made some flux.
	nets, err := networks.List(single)
	if err != nil {
		t.Fatal(err)
	}
	spanning := 0
	for _, n := range nets {
		on := map[int]bool{}
		for _, d := range n.Domains {
			on[ShardOf(d, k)] = true
		}
		if len(on) > 1 {
			spanning++
		}
	}
	t.Logf("%d domains, %d runs, %d flux in the last, %d networks (%d over several shards), %d domains associated (%d with other shards' domains)",
		len(domains), runs, listed, len(nets), spanning, len(associated), len(across))
	if listed == 0 || spanning == 0 || len(across) == 0 {
		t.Errorf("%d flux verdicts, %d networks over several shards, %d associated across shards: the comparison proves too little", listed, spanning, len(across))
	}
}

// A watching builder waits for a shard that runs after it one round only:
// a shard that does not come (a dead one) is not waited for again until
// it runs, so the rounds after are built at the builder's run.
func TestShardNetworksDoNotWaitForADeadShard(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv := startNATS(t)
	js := jsClient(t, srv.ClientURL())
	log, _ := testLogger(t, 0)
	stores := []*storage.Store{openStore(t, "s0.db"), openStore(t, "s1.db"), openStore(t, "s2.db")}
	shards := make([]*ShardNetworks, 3)
	for k := range shards {
		shards[k] = &ShardNetworks{JS: js, Shard: k, Shards: 3, Logger: log}
	}
	builder := shards[0]
	state := func() (built bool, pending []int) {
		builder.mu.Lock()
		defer builder.mu.Unlock()
		return builder.round != nil && builder.round.built, slices.Sorted(maps.Keys(builder.pending))
	}
	watched := make(chan error, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	go func() { watched <- builder.Watch(watchCtx, stores[0]) }()
	waitFor(t, 10*time.Second, "the builder to watch", func() bool {
		builder.mu.Lock()
		defer builder.mu.Unlock()
		return builder.watching
	})

	x := shardPool(1, 200)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	domains := []shardDomain{flux(0, "a0.test", t0, x[0:100]), flux(1, "a1.test", t0, x[50:150]), flux(2, "a2.test", t0, x[100:200])}
	run := func(at time.Time, order ...int) {
		t.Helper()
		for _, k := range order {
			if _, err := shards[k].Build(ctx, stores[k], shardRunOf(shards[k], domains, at)); err != nil {
				t.Fatalf("shard %d: %v", k, err)
			}
		}
	}
	cases := []struct {
		order   []int
		built   bool
		pending []int
	}{
		{[]int{1, 2, 0}, true, nil},    // everyone before the builder
		{[]int{1, 0}, false, []int{2}}, // shard 2 is late...
		{[]int{1, 0}, true, nil},       // ...and dead: not waited for again
		{[]int{1, 0}, true, nil},       // nor the round after
		{[]int{0, 1}, true, nil},       // shard 1, after the builder, waited for and come
		{[]int{2, 0}, false, []int{1}}, // shard 2 back; shard 1 now late
		{[]int{1, 2, 0}, true, nil},    // shard 1 came in the round it was waited for
	}
	for i, c := range cases {
		run(t0.Add(time.Duration(i)*time.Hour), c.order...)
		if c.built && slices.Equal(c.order, []int{0, 1}) {
			waitFor(t, 10*time.Second, "the round to be built once shard 1 has run", func() bool { built, _ := state(); return built })
		}
		built, pending := state()
		if built != c.built || !slices.Equal(pending, c.pending) {
			t.Errorf("round %d, runs %v: built %v, waiting for %v; want %v, %v", i+1, c.order, built, pending, c.built, c.pending)
		}
	}
	stopWatch()
	if err := <-watched; err != nil {
		t.Errorf("watch: %v", err)
	}
}
