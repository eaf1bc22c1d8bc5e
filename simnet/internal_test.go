package simnet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func testModel(t testing.TB, seed int64) (*model, []Domain) {
	t.Helper()
	cfg, err := Config{Seed: seed}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return generate(cfg)
}

func TestLookupIsPure(t *testing.T) {
	m1, ds := testModel(t, 11)
	m2, _ := testModel(t, 11)
	t0 := DefaultStart
	for _, d := range ds {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeSOA} {
			for v := range 4 {
				for _, at := range []time.Time{t0, t0.Add(17 * time.Minute), t0.Add(40 * time.Hour)} {
					a, b := m1.lookup(d.Name+".", qt, at, v), m2.lookup(d.Name+".", qt, at, v)
					if show(a) != show(b) {
						t.Fatalf("%s %d at %v vantage %d: %v vs %v", d.Name, qt, at, v, a, b)
					}
				}
			}
		}
	}
}

// show renders an answer for comparison.
func show(a answer) string { return fmt.Sprint(a.rcode, a.rrs, a.soa, a.ttl) }

func TestFluxChangesAtEpochBoundaries(t *testing.T) {
	m, ds := testModel(t, 12)
	for _, d := range ds {
		if d.Kind != KindFluxA && d.Kind != KindNarrowFlux { // slow flux holds its answers longer
			continue
		}
		name := d.Name + "."
		ttl := int64(d.TTL)
		boundary := time.Unix((DefaultStart.Unix()/ttl+1)*ttl, 0)
		before := m.lookup(name, dns.TypeA, boundary.Add(-time.Second), 0)
		early := m.lookup(name, dns.TypeA, boundary.Add(-time.Duration(ttl)*time.Second), 0)
		after := m.lookup(name, dns.TypeA, boundary, 0)
		other := m.lookup(name, dns.TypeA, boundary, 1)
		if fmt.Sprint(before.rrs) != fmt.Sprint(early.rrs) {
			t.Errorf("%s changed inside one epoch", d.Name)
		}
		if fmt.Sprint(before.rrs) == fmt.Sprint(after.rrs) {
			t.Errorf("%s did not change at the epoch boundary", d.Name)
		}
		if fmt.Sprint(after.rrs) == fmt.Sprint(other.rrs) {
			t.Errorf("%s: vantages 0 and 1 see the same rotation", d.Name)
		}
	}
}

func TestClockRunsFast(t *testing.T) {
	real := time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC)
	c := newClock(DefaultStart, 30, func() time.Time { return real })
	real = real.Add(2 * time.Second)
	if got, want := c.Now(), DefaultStart.Add(time.Minute); !got.Equal(want) {
		t.Errorf("after 2 real seconds at speed 30: %v, want %v", got, want)
	}
	if got := c.real(time.Minute); got != 2*time.Second {
		t.Errorf("a simulated minute takes %v real time, want 2s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, time.Hour); err != context.Canceled {
		t.Errorf("Sleep on a cancelled context: %v", err)
	}
	if err := newClock(DefaultStart, 3600, time.Now).Sleep(context.Background(), time.Second); err != nil {
		t.Errorf("short Sleep: %v", err)
	}
}

// testVantage returns a vantage of a world with extra nodes added.
func testVantage(t testing.TB, extra map[string]*node) *vantage {
	t.Helper()
	m, ds := testModel(t, 13)
	for name, n := range extra {
		m.nodes[name] = n
	}
	cfg, _ := Config{}.withDefaults()
	w := &World{cfg: cfg, log: cfg.Logger, clock: newClock(DefaultStart, 30, time.Now), model: m, domains: ds, done: make(chan struct{})}
	return &vantage{w: w, cache: newCache()}
}

func TestUDPAnswersAreTruncated(t *testing.T) {
	var pool []netip.Addr
	for i := range 100 {
		pool = append(pool, netip.AddrFrom4([4]byte{11, 0, 0, byte(i + 1)}))
	}
	v := testVantage(t, map[string]*node{"big.test.": {a: &addrSet{pool: pool, ttl: 60}}})
	for _, tc := range []struct {
		udp     bool
		edns    uint16
		max     int
		trunc   bool
		answers int
	}{
		{udp: true, max: 512, trunc: true},
		{udp: true, edns: 4096, max: 1232, trunc: true},
		{udp: false, max: dns.MaxMsgSize, answers: 100},
	} {
		req := new(dns.Msg)
		req.SetQuestion("big.test.", dns.TypeA)
		if tc.edns != 0 {
			req.SetEdns0(tc.edns, false)
		}
		resp := v.respond(req, tc.udp)
		wire, err := resp.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if len(wire) > tc.max || resp.Truncated != tc.trunc || (tc.answers != 0 && len(resp.Answer) != tc.answers) {
			t.Errorf("%+v: %d bytes, TC %v, %d answers", tc, len(wire), resp.Truncated, len(resp.Answer))
		}
		if (tc.edns != 0) != (resp.IsEdns0() != nil) {
			t.Errorf("%+v: OPT record lost", tc)
		}
	}
}

func TestCNAMELoopFails(t *testing.T) {
	v := testVantage(t, map[string]*node{
		"a.loop.test.": {cname: "b.loop.test.", cnameTTL: 60},
		"b.loop.test.": {cname: "a.loop.test.", cnameTTL: 60},
	})
	req := new(dns.Msg)
	req.SetQuestion("a.loop.test.", dns.TypeA)
	if resp := v.respond(req, false); resp.Rcode != dns.RcodeServerFailure || len(resp.Answer) != 0 {
		t.Errorf("CNAME loop: %v", resp)
	}
	req.SetQuestion("a.loop.test.", dns.TypeCNAME)
	if resp := v.respond(req, false); len(resp.Answer) != 1 {
		t.Errorf("CNAME query: want the CNAME alone, got %v", resp.Answer)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache()
	now := DefaultStart
	for i := range maxCacheEntries + 10 {
		c.get(cacheKey{fmt.Sprintf("n%d.test.", i), dns.TypeA}, now, func() answer { return answer{ttl: 60} })
	}
	if n := c.len(); n > maxCacheEntries {
		t.Errorf("cache holds %d entries, bound %d", n, maxCacheEntries)
	}
	fresh := c.get(cacheKey{"x.test.", dns.TypeA}, now, func() answer { return answer{ttl: 0, rcode: dns.RcodeServerFailure} })
	if fresh.rcode != dns.RcodeServerFailure || c.len() > maxCacheEntries {
		t.Errorf("uncacheable answer: %+v", fresh)
	}
}

func TestSampleStaysInRange(t *testing.T) {
	m, _ := testModel(t, 14)
	pool := []int{1, 2, 3, 4, 5}
	for e := range int64(200) {
		got := sample(m.rand("x.", 1, e, 0), pool, 2, 9)
		if len(got) < 2 || len(got) > len(pool) || !slices.IsSorted(got) {
			t.Fatalf("sample %v", got)
		}
	}
}

func FuzzRespond(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.example.", dns.TypeA}, {"test.", dns.TypeSOA}, {"x.edge.y.test.", dns.TypeAAAA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, true)
		wire, _ := m.Pack()
		f.Add(wire)
	}
	v := testVantage(f, nil)
	f.Fuzz(func(t *testing.T, wire []byte) {
		req := new(dns.Msg)
		if req.Unpack(wire) != nil {
			return
		}
		resp := v.respond(req, true)
		if _, err := resp.Pack(); err != nil && resp.Rcode <= 0xF {
			t.Fatalf("response does not pack: %v\n%v", err, resp)
		}
	})
}

func TestSlowFluxHoldsForFourTTLs(t *testing.T) {
	m, ds := testModel(t, 16)
	n := 0
	for _, d := range ds {
		if d.Kind != KindSlowFlux {
			continue
		}
		n++
		name, ttl := d.Name+".", int64(d.TTL)
		period := slowFluxHold * ttl
		t0 := time.Unix((DefaultStart.Unix()/period+1)*period, 0) // a period boundary
		prev := ""
		for s := int64(0); s < 6*period; s++ {
			at := t0.Add(time.Duration(s) * time.Second)
			got := fmt.Sprint(m.lookup(name, dns.TypeA, at, 0).rrs)
			changed := s > 0 && got != prev
			if boundary := s%period == 0; changed != (boundary && s > 0) {
				t.Errorf("%s (TTL %d) at +%ds: changed %v, at a %d s boundary %v", d.Name, ttl, s, changed, period, boundary)
			}
			prev = got
		}
	}
	if n == 0 {
		t.Fatal("no slow-flux domain")
	}
}

func TestMigrationSwitchesAtItsTime(t *testing.T) {
	m, ds := testModel(t, 17)
	for _, d := range ds {
		if d.Kind != KindMigration {
			continue
		}
		var switches []time.Duration
		prev := ""
		for s := time.Duration(0); s <= time.Hour; s += time.Second {
			got := fmt.Sprint(m.lookup(d.Name+".", dns.TypeA, DefaultStart.Add(s), 3).rrs)
			if s > 0 && got != prev {
				switches = append(switches, s)
			}
			prev = got
		}
		if len(switches) != 1 || switches[0] < 10*time.Minute || switches[0] > 15*time.Minute {
			t.Errorf("%s switched at %v, want once, 10 to 15 minutes after the start", d.Name, switches)
		}
	}
}

func TestCDNEdgesSitInFewPrefixes(t *testing.T) {
	m, ds := testModel(t, 18)
	for _, d := range ds {
		if d.Kind != KindCDN {
			continue
		}
		edge := m.nodes[m.nodes[d.Name+"."].cname]
		per := make(map[uint32]map[netip.Prefix]bool)
		for _, a := range slices.Concat(edge.a.pool, edge.aaaa.pool) {
			as, _ := m.space.lookup(a)
			bits := 24
			if a.Is6() {
				bits = 48
			}
			if per[as.number] == nil {
				per[as.number] = make(map[netip.Prefix]bool)
			}
			per[as.number][netip.PrefixFrom(a, bits).Masked()] = true
		}
		for asn, ps := range per {
			if len(ps) < 4 || len(ps) > 8 { // 2..4 /24s and as many /48s
				t.Errorf("%s: AS%d edges in %d prefixes", d.Name, asn, len(ps))
			}
		}
		if n := len(edge.a.pool); n < 200 || n > 400 || len(per) > 2 {
			t.Errorf("%s: %d IPv4 edge addresses in %d ASNs", d.Name, n, len(per))
		}
	}
}

// TestParentMatchesVantageZero: the registry's rotating delegation data is
// what vantage 0 is told by the child at the same moment.
func TestParentMatchesVantageZero(t *testing.T) {
	m, ds := testModel(t, 19)
	for _, d := range ds {
		if d.Class != ClassDoubleFlux {
			continue
		}
		name := d.Name + "."
		for s := range 20 {
			at := DefaultStart.Add(time.Duration(s*97) * time.Second)
			if at.Before(d.Starts) {
				continue // not delegated yet (TestNetworksStartAndMove)
			}
			p := m.parent("www."+name, dns.TypeA, at)
			child := m.lookup(name, dns.TypeNS, at, 0)
			if p.authoritative || fmt.Sprint(nsNames(p.authority)) != fmt.Sprint(nsNames(child.rrs)) {
				t.Fatalf("%s at %v: parent NS %v, child NS at vantage 0 %v", d.Name, at, p.authority, child.rrs)
			}
			var want []dns.RR
			for _, host := range nsNames(child.rrs) {
				if strings.HasSuffix(host, "."+name) {
					want = append(want, m.lookup(host, dns.TypeA, at, 0).rrs...)
				}
			}
			if fmt.Sprint(p.additional) != fmt.Sprint(want) {
				t.Fatalf("%s at %v: glue %v, the hosts' A records at vantage 0 %v", d.Name, at, p.additional, want)
			}
		}
	}
}

func nsNames(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok {
			out = append(out, ns.Ns)
		}
	}
	return out
}

func FuzzRegistryRespond(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.example.", dns.TypeA}, {"test.", dns.TypeNS}, {"a.nic.test.", dns.TypeA}, {"x.y.test.", dns.TypeDS}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, true)
		wire, _ := m.Pack()
		f.Add(wire)
	}
	r := &registry{w: testVantage(f, nil).w}
	f.Fuzz(func(t *testing.T, wire []byte) {
		req := new(dns.Msg)
		if req.Unpack(wire) != nil {
			return
		}
		resp := r.respond(req, true)
		if _, err := resp.Pack(); err != nil && resp.Rcode <= 0xF {
			t.Fatalf("response does not pack: %v\n%v", err, resp)
		}
		if resp.RecursionAvailable {
			t.Fatalf("the registry offers recursion")
		}
	})
}

// A network's newer domain is NXDOMAIN, through the vantages and in the
// parent zone, until it starts, and answers from the network's pool
// after; a domain that moved answers from the pool it left until it moves,
// from its new one after; every network's pool holds the decoys.
func TestNetworksStartAndMove(t *testing.T) {
	cfg, err := Config{Seed: 21}.WithNetworks().withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m, ds := generate(cfg)
	pools := map[string][]netip.Addr{} // network → its pool, as its steady domains have it
	for _, d := range ds {
		if d.Kind == KindNetworkFlux && d.PreviousNetwork == "" && d.Starts.IsZero() {
			pools[d.Network] = m.nodes[d.Name+"."].a.pool
		}
	}
	from := func(network string, a answer) bool {
		for _, rr := range a.rrs {
			ip, _ := netip.AddrFromSlice(rr.(*dns.A).A)
			if !slices.Contains(pools[network], ip.Unmap()) {
				return false
			}
		}
		return len(a.rrs) > 0
	}
	var late, moved int
	for _, d := range ds {
		name := d.Name + "."
		switch {
		case !d.Starts.IsZero():
			late++
			before, after := d.Starts.Add(-time.Second), d.Starts.Add(time.Minute)
			if a := m.lookup(name, dns.TypeA, before, 0); a.rcode != dns.RcodeNameError {
				t.Errorf("%s before it starts: rcode %d", d.Name, a.rcode)
			}
			if p := m.parent(name, dns.TypeNS, before); p.rcode != dns.RcodeNameError || len(p.authority) != 1 {
				t.Errorf("%s before it starts: the registry says rcode %d, %v", d.Name, p.rcode, p.authority)
			}
			if p := m.parent(name, dns.TypeNS, after); p.rcode != dns.RcodeSuccess || p.authoritative {
				t.Errorf("%s after it starts: the registry does not refer it: %+v", d.Name, p)
			}
			if a := m.lookup(name, dns.TypeA, after, 0); !from(d.Network, a) || len(a.rrs) > 2 {
				t.Errorf("%s after it starts: %v", d.Name, a.rrs)
			}
		case d.PreviousNetwork != "":
			moved++
			if a := m.lookup(name, dns.TypeA, d.MovesAt.Add(-time.Hour/4), 1); !from(d.PreviousNetwork, a) {
				t.Errorf("%s before its move: %v", d.Name, a.rrs)
			}
			if a := m.lookup(name, dns.TypeA, d.MovesAt.Add(5*time.Minute), 1); !from(d.Network, a) {
				t.Errorf("%s after its move: %v", d.Name, a.rrs)
			}
		}
	}
	if late < 3 || moved != 2 {
		t.Errorf("%d newer domains, %d moved; want at least 3 and 2", late, moved)
	}
	// The decoys: a parked domain's address and one of a shared edge's are
	// in every network's pool.
	decoys := map[string][]netip.Addr{}
	for _, d := range ds {
		if d.Kind == KindParked || d.Kind == KindSharedEdge {
			decoys[d.Kind] = m.nodes[d.Name+"."].a.pool
		}
	}
	for network, pool := range pools {
		for kind, addrs := range decoys {
			if !slices.ContainsFunc(addrs, func(a netip.Addr) bool { return slices.Contains(pool, a) }) {
				t.Errorf("%s's pool holds no address of the %s names", network, kind)
			}
		}
	}
}
