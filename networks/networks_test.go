package networks

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/storage"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// agentPool returns n addresses of one simulated botnet: 203.<net>.x.y.
func agentPool(net byte, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{203, net, byte(i / 250), byte(1 + i%250)})
	}
	return out
}

// draw returns k distinct addresses of pool, sorted, from r.
func draw(r *rand.Rand, pool []netip.Addr, k int) []netip.Addr {
	out := slices.Clone(pool)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	out = out[:k]
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func member(domain string, agents ...[]netip.Addr) Member {
	m := Member{Domain: domain, FirstSeen: t0, LastSeen: t0.Add(time.Hour)}
	for _, a := range agents {
		m.Agents = append(m.Agents, a...)
	}
	m.Latest = m.Agents[:min(4, len(m.Agents))]
	return m
}

// domainsOf names each group's domains: "a b | c".
func domainsOf(members []Member, groups [][]int) string {
	var parts []string
	for _, g := range groups {
		var names []string
		for _, i := range g {
			names = append(names, members[i].Domain)
		}
		parts = append(parts, strings.Join(names, " "))
	}
	return strings.Join(parts, " | ")
}

// Members sampling one pool are linked however different the sizes of
// their samples; members of different pools are not, and neither are
// members that share one address or a sliver of the smaller set.
func TestLinkingRule(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x, y := agentPool(1, 300), agentPool(2, 300)
	members := []Member{
		member("x-old.test", draw(r, x, 150)),
		member("x-new.test", draw(r, x, 8)), // one round's worth
		member("x-mid.test", draw(r, x, 60)),
		member("y-old.test", draw(r, y, 150)),
		member("y-new.test", draw(r, y, 10)),
		// One address of x by chance: not a link.
		member("lone.test", agentPool(3, 40), x[:1]),
		// Two of x among 100 of its own: under MinShared.
		member("sliver.test", agentPool(4, 100), x[:2]),
		// Four of x among 100 of its own: MinShared met, but 4% of the
		// smaller set, under MinOverlap.
		member("thin.test", agentPool(5, 100), x[10:14]),
	}
	got := domainsOf(members, Group(members, nil, DefaultRules))
	want := "lone.test | sliver.test | thin.test | x-mid.test x-new.test x-old.test | y-new.test y-old.test"
	if got != want {
		t.Errorf("groups\n got %s\nwant %s", got, want)
	}
	// The overlap coefficient sees the small sample inside the large one;
	// Jaccard is held under their size ratio.
	small, large := members[1].Agents, members[0].Agents
	slices.SortFunc(small, netip.Addr.Compare)
	slices.SortFunc(large, netip.Addr.Compare)
	if o, _ := Overlap(small, large); o < 0.3 {
		t.Errorf("overlap of a sample in its pool's larger sample: %.2f", o)
	}
	if j := Jaccard(small, large); j >= DefaultRules.MinOverlap {
		t.Errorf("Jaccard %.3f of a sample in its pool's larger sample: it would have linked them too, and shows nothing", j)
	}
}

// The safeguards: addresses of shared hosting, a CDN edge and a parking
// service that domains of two networks also resolved to never link them,
// whether the benign names were judged benign already or are only many.
func TestSafeguards(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x, y := agentPool(1, 300), agentPool(2, 300)
	hosting := []netip.Addr{netip.MustParseAddr("192.0.2.80")}
	cdnEdge := []netip.Addr{netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("198.51.100.11")}
	parking := []netip.Addr{netip.MustParseAddr("198.51.100.200"), netip.MustParseAddr("198.51.100.201"), netip.MustParseAddr("198.51.100.202")}
	shared := slices.Concat(hosting, cdnEdge, parking)
	// Two small members of different networks whose answers both hold the
	// shared addresses: 6 of their 14 agents.
	members := []Member{
		member("x1.test", draw(r, x, 250)), member("x2.test", draw(r, x, 8), shared),
		member("y1.test", draw(r, y, 250)), member("y2.test", draw(r, y, 8), shared),
	}
	for i := range members {
		slices.SortFunc(members[i].Agents, netip.Addr.Compare)
	}
	if got := domainsOf(members, Group(members, nil, DefaultRules)); strings.Contains(got, "|") {
		t.Fatalf("without safeguards the shared addresses should link the networks (the test would prove nothing): %s", got)
	}
	want := "x1.test x2.test | y1.test y2.test"
	cases := []struct {
		name string
		add  func(s *AddrStats)
	}{
		{"judged benign", func(s *AddrStats) {
			s.Add(hosting, true) // shared hosting: one benign site is enough
			s.Add(cdnEdge, true)
			s.Add(parking, true)
		}},
		{"not yet judged, many names", func(s *AddrStats) {
			for range DefaultRules.MaxNonFlux + 1 {
				s.Add(shared, false)
			}
		}},
	}
	for _, c := range cases {
		s := NewAddrStats(100)
		c.add(s)
		if got := domainsOf(members, Group(members, s.Excluded(DefaultRules.MaxNonFlux), DefaultRules)); got != want {
			t.Errorf("%s: %s, want %s", c.name, got, want)
		}
	}
	// As many names not judged flux as MaxNonFlux: still agents.
	s := NewAddrStats(100)
	for range DefaultRules.MaxNonFlux {
		s.Add(x[:5], false)
	}
	if s.Excluded(DefaultRules.MaxNonFlux)(x[0]) {
		t.Errorf("an address %d names not judged flux resolved to was excluded", DefaultRules.MaxNonFlux)
	}
}

// AddrStats never understates: every address recorded reads as benign
// when it was, and its count is at least the true one, however full.
func TestAddrStatsNeverUnderstates(t *testing.T) {
	s := NewAddrStats(1000)
	r := rand.New(rand.NewPCG(5, 6))
	truth := map[netip.Addr]int{}
	benign := map[netip.Addr]bool{}
	for range 3000 {
		var addrs []netip.Addr
		for range 1 + r.IntN(3) {
			addrs = append(addrs, netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256)), 1}))
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		addrs = slices.Compact(addrs)
		b := r.IntN(2) == 0
		s.Add(addrs, b)
		for _, a := range addrs {
			truth[a]++
			benign[a] = benign[a] || b
		}
	}
	wrongBenign := 0
	for a, n := range truth {
		if got := s.NonFlux(a); got < min(n, 255) {
			t.Fatalf("%s: count %d < %d", a, got, n)
		}
		if benign[a] && !s.Benign(a) {
			t.Fatalf("%s: benign not recorded", a)
		}
	}
	// Sized for what it holds, it rarely takes an address for benign.
	sized := NewAddrStats(len(truth))
	for a := range benign {
		sized.Add([]netip.Addr{a}, true)
	}
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{100, byte(i >> 8), byte(i), 1})
		if sized.Benign(a) {
			wrongBenign++
		}
	}
	if wrongBenign > 100 {
		t.Errorf("%d of 10000 addresses never recorded read as benign", wrongBenign)
	}
	var nilStats *AddrStats
	if nilStats.Excluded(0)(netip.MustParseAddr("192.0.2.1")) {
		t.Error("nil stats excluded an address")
	}
}

// A domain that moved from one network to another holds the agents of
// both in its window; it does not merge them, and goes with the one its
// latest answers came from.
func TestMoverDoesNotMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x, y := agentPool(1, 200), agentPool(2, 200)
	mover := member("mover.test", draw(r, x, 40), draw(r, y, 40))
	mover.Latest = draw(r, y, 4)
	members := []Member{
		member("x1.test", draw(r, x, 80)), member("x2.test", draw(r, x, 80)), member("x3.test", draw(r, x, 80)),
		member("y1.test", draw(r, y, 80)), member("y2.test", draw(r, y, 80)), mover,
	}
	got := domainsOf(members, Group(members, nil, DefaultRules))
	if want := "mover.test y1.test y2.test | x1.test x2.test x3.test"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Moving back: with x's addresses latest, it goes with x.
	members[5].Latest = draw(r, x, 4)
	got = domainsOf(members, Group(members, nil, DefaultRules))
	if want := "mover.test x1.test x2.test x3.test | y1.test y2.test"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func openStore(t *testing.T) *storage.Store {
	t.Helper()
	s, err := storage.Open(filepath.Join(t.TempDir(), "n.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("check: %v", err)
		}
		s.Close()
	})
	return s
}

// kinds lists a network's event kinds.
func kinds(n Network) string {
	var ks []string
	for _, e := range n.Events {
		ks = append(ks, e.Kind)
	}
	return strings.Join(ks, ",")
}

func byID(t *testing.T, store *storage.Store) map[string]Network {
	t.Helper()
	nets, err := List(store)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Network{}
	for _, n := range nets {
		out[strings.Join(n.Domains, " ")] = n
	}
	return out
}

// Ids stay while most domains stay; a merge keeps the largest
// predecessor's id, a split keeps it on the largest part, and the log
// says what happened.
func TestStableIDsMergesAndSplits(t *testing.T) {
	store := openStore(t)
	r := rand.New(rand.NewPCG(9, 10))
	x, y := agentPool(1, 200), agentPool(2, 200)
	run := func(at time.Duration, ms ...Member) map[string]Network {
		t.Helper()
		if _, err := Update(store, ms, nil, t0.Add(at), Options{}); err != nil {
			t.Fatal(err)
		}
		return byID(t, store)
	}
	m := func(name string, pool []netip.Addr, k int) Member { return member(name, draw(r, pool, k)) }

	got := run(0, m("a.test", x, 80), m("b.test", x, 80), m("c.test", x, 80), m("p.test", y, 80), m("q.test", y, 80))
	nx, ny := got["a.test b.test c.test"], got["p.test q.test"]
	if nx.ID == "" || ny.ID == "" || nx.ID == ny.ID || kinds(nx) != "first-seen" {
		t.Fatalf("first run: %+v", got)
	}
	// Runs later: a new domain joins x, one of y's stops fluxing.
	got = run(time.Hour, m("a.test", x, 90), m("b.test", x, 90), m("c.test", x, 90), m("d.test", x, 10), m("p.test", y, 90))
	if n := got["a.test b.test c.test d.test"]; n.ID != nx.ID || kinds(n) != "first-seen,grew" || len(n.Sizes) != 2 {
		t.Errorf("grown x: id %s (want %s), events %s, sizes %v", n.ID, nx.ID, kinds(n), n.Sizes)
	}
	if n := got["p.test"]; n.ID != ny.ID || kinds(n) != "first-seen,shrank" {
		t.Errorf("shrunk y: id %s (want %s), events %s", n.ID, ny.ID, kinds(n))
	}
	// y's remaining domain starts using x's agents: the networks merge,
	// and the larger (x) keeps its id.
	got = run(2*time.Hour, m("a.test", x, 90), m("b.test", x, 90), m("c.test", x, 90), m("d.test", x, 20), member("p.test", draw(r, x, 60), draw(r, y, 60)))
	merged := got["a.test b.test c.test d.test p.test"]
	if merged.ID != nx.ID || kinds(merged) != "first-seen,grew,merged" || !strings.Contains(merged.Events[2].Detail, ny.ID) {
		t.Errorf("merge: %s %s %v", merged.ID, kinds(merged), merged.Events)
	}
	// x's agents part: three domains keep to one half of the pool, two
	// to the other: the larger part keeps the id, the other is new.
	x1, x2 := x[:100], x[100:]
	got = run(3*time.Hour, m("a.test", x1, 80), m("b.test", x1, 80), m("c.test", x1, 80), m("d.test", x2, 80), m("p.test", x2, 80))
	big, small := got["a.test b.test c.test"], got["d.test p.test"]
	if big.ID != nx.ID || kinds(big) != "first-seen,grew,merged,split" {
		t.Errorf("split, larger part: %s %s", big.ID, kinds(big))
	}
	if small.ID == nx.ID || small.ID == ny.ID || kinds(small) != "first-seen" || !strings.Contains(small.Events[0].Detail, "split from "+nx.ID) {
		t.Errorf("split, smaller part: %s %v", small.ID, small.Events)
	}
	if n, _ := idNumber(small.ID); n != 3 {
		t.Errorf("new id %s: ids are numbered on, never reused", small.ID)
	}
	// Lookups for the commands.
	n, err := Of(store, "b.test")
	if err != nil || n == nil || n.ID != nx.ID || strings.Join(n.Siblings("b.test"), " ") != "a.test c.test" {
		t.Errorf("Of(b.test) = %v %v", n, err)
	}
	if n, err := Get(store, "net-404"); n != nil || err != nil {
		t.Errorf("Get of an unknown id: %v %v", n, err)
	}
	if n, err := Of(store, "unknown.test"); n != nil || err != nil {
		t.Errorf("Of an unknown domain: %v %v", n, err)
	}
}

func TestPurityAndAdjustedRand(t *testing.T) {
	cases := []struct {
		pred, truth []string
		purity, ari float64
	}{
		// Hubert and Arabie's index as scikit-learn computes it.
		{[]string{"0", "0", "1", "1", "2", "2"}, []string{"0", "0", "0", "1", "1", "1"}, 5.0 / 6, 0.24242424242424243},
		{[]string{"0", "0", "1", "2"}, []string{"0", "0", "1", "1"}, 1, 0.5714285714285714},
		{[]string{"a", "a", "b", "b"}, []string{"x", "x", "y", "y"}, 1, 1},
		{[]string{"a", "b", "c"}, []string{"x", "y", "z"}, 1, 1},
		{[]string{"a", "a", "a"}, []string{"x", "x", "x"}, 1, 1},
		{[]string{"a", "b", "c"}, []string{"x", "x", "x"}, 1, 0},
		{[]string{"a", "a", "a", "a"}, []string{"x", "x", "y", "y"}, 0.5, 0},
		{nil, nil, 1, 1},
	}
	for _, c := range cases {
		if got := Purity(c.pred, c.truth); abs(got-c.purity) > 1e-12 {
			t.Errorf("Purity(%v, %v) = %v, want %v", c.pred, c.truth, got, c.purity)
		}
		if got := AdjustedRand(c.pred, c.truth); abs(got-c.ari) > 1e-12 {
			t.Errorf("AdjustedRand(%v, %v) = %v, want %v", c.pred, c.truth, got, c.ari)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// The association index finds the network most of a domain's addresses
// are agents of.
func TestIndexMatch(t *testing.T) {
	x, y := agentPool(1, 50), agentPool(2, 50)
	idx := NewIndex([]Network{{ID: "net-1", Domains: []string{"x.test"}, Agents: x}, {ID: "net-2", Domains: []string{"y1.test", "y2.test"}, Agents: y[:40], NSAgents: y[40:]}})
	m := idx.Match("new.test", slices.Concat(y[38:44], x[:2], agentPool(9, 3)))
	if m != (Match{Network: "net-2", Seen: 6, Agents: 50}) {
		t.Errorf("Match = %+v", m)
	}
	if m := idx.Match("new.test", agentPool(9, 5)); m.Network != "" {
		t.Errorf("no agent: %+v", m)
	}
	// A domain is no evidence about itself: its own network of one is no
	// match, a network it shares with others is.
	if m := idx.Match("x.test", x); m.Network != "" {
		t.Errorf("a network of the domain alone matched: %+v", m)
	}
	if m := idx.Match("y1.test", y); m.Network != "net-2" {
		t.Errorf("a network of the domain and another: %+v", m)
	}
	var none *Index
	if m := none.Match("x.test", x); m.Network != "" || none.Len() != 0 {
		t.Errorf("nil index: %+v", m)
	}
}

func TestPrinters(t *testing.T) {
	n := Network{ID: "net-3", Domains: []string{"a.test", "b.test"}, Agents: agentPool(1, 70),
		NSAgents: agentPool(2, 2), ASNs: []uint32{64500, 64501}, Countries: []string{"NL", "RU"},
		FirstSeen: t0, LastSeen: t0.Add(time.Hour),
		Sizes:  []Size{{At: t0, Domains: 1, Agents: 30}, {At: t0.Add(time.Hour), Domains: 2, Agents: 72}},
		Events: []Event{{At: t0, Kind: EventFirstSeen, Detail: "1 domains: a.test"}, {At: t0.Add(time.Hour), Kind: EventGrew, Detail: "+1 domains: b.test"}}}
	var b bytes.Buffer
	if err := PrintJSONLines(&b, []Network{n, n}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "domains", "agents", "ns_agents", "asns", "countries", "first_seen", "last_seen", "sizes", "events"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON line lacks %q: %s", k, lines[0])
		}
	}
	b.Reset()
	if err := PrintDetail(&b, n); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"network net-3: 2 domains, 70 agents, 2 name server agents", "  b.test\n", "(6 more: --json lists them all)",
		"ASNs (2): AS64500 AS64501", "grew        +1 domains: b.test"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("detail lacks %q:\n%s", want, b.String())
		}
	}
	if got := Line(&n, "a.test"); got != "network net-3: 2 domains, 72 agents; with b.test" {
		t.Errorf("Line = %q", got)
	}
}

func ExamplePrintTable() {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	nets := []Network{{ID: "net-1", Domains: []string{"a.test", "b.test", "c.test"}, Agents: agentPool(1, 212),
		ASNs: []uint32{1, 2, 3}, Countries: []string{"BR", "RU"}, FirstSeen: at, LastSeen: at.Add(time.Hour),
		Events: []Event{{At: at, Kind: EventFirstSeen}, {At: at.Add(time.Hour), Kind: EventGrew}}}}
	PrintTable(os.Stdout, nets)
	// Output:
	// NETWORK  DOMAINS  AGENTS  NS AGENTS  ASNS  COUNTRIES  FIRST SEEN            LAST SEEN             LATEST CHANGE              DOMAINS (FIRST)
	// net-1    3        212     0          3     2          2026-01-01T12:00:00Z  2026-01-01T13:00:00Z  grew 2026-01-01T13:00:00Z  a.test, b.test, c.test
}
