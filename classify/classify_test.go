package classify

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// asnTable maps 10.N.0.0/16 to AS 64500+N for N in 0..99.
func asnTable(t *testing.T) *ipmeta.DB {
	t.Helper()
	var b strings.Builder
	for n := range 100 {
		fmt.Fprintf(&b, "10.%d.0.0\t10.%d.255.255\t%d\tZZ\tTEST-%d\n", n, n, 64500+n, n)
	}
	tab, err := ipmeta.Load(strings.NewReader(b.String()), "test.tsv")
	if err != nil {
		t.Fatal(err)
	}
	db := &ipmeta.DB{}
	db.AddASN(tab)
	return db
}

// world describes a synthetic domain for building probe histories.
type world struct {
	rounds, vantages int
	ttl              uint32
	// addrs returns the domain's addresses seen by vantage v in round r.
	addrs func(r, v int) []string
	// ns returns the NS names and the addresses of each name server.
	ns     func(r, v int) (names []string, addrs map[string][]string)
	nsTTL  uint32
	failed func(r, v int) bool // the domain's queries time out
}

func (w world) probes(domain string) []obs.Probe {
	var out []obs.Probe
	for r := range w.rounds {
		for v := range w.vantages {
			at := t0.Add(time.Duration(r) * 2 * time.Minute)
			vantage := fmt.Sprintf("127.0.0.1:%d", 5300+v)
			p := obs.Probe{Domain: domain, Vantage: vantage, Start: at}
			if w.failed != nil && w.failed(r, v) {
				p.Observations = append(p.Observations, obs.Observation{Name: domain, QType: dns.TypeA, Err: obs.Timeout})
				out = append(out, p)
				continue
			}
			// IPv4 addresses in the A answer, IPv6 ones in an AAAA answer.
			a := obs.Observation{Name: domain, QType: dns.TypeA}
			aaaa := obs.Observation{Name: domain, QType: dns.TypeAAAA}
			for _, ip := range w.addrs(r, v) {
				if strings.Contains(ip, ":") {
					aaaa.Answer = append(aaaa.Answer, obs.Record{Name: domain, Type: dns.TypeAAAA, TTL: w.ttl, Data: ip})
				} else {
					a.Answer = append(a.Answer, obs.Record{Name: domain, Type: dns.TypeA, TTL: w.ttl, Data: ip})
				}
			}
			p.Observations = append(p.Observations, a)
			if len(aaaa.Answer) > 0 {
				p.Observations = append(p.Observations, aaaa)
			}
			if w.ns != nil {
				names, addrs := w.ns(r, v)
				nso := obs.Observation{Name: domain, QType: dns.TypeNS}
				for _, n := range names {
					nso.Answer = append(nso.Answer, obs.Record{Name: domain, Type: dns.TypeNS, TTL: w.nsTTL, Data: n})
				}
				p.Observations = append(p.Observations, nso)
				for _, n := range names {
					o := obs.Observation{Name: n, QType: dns.TypeA}
					for _, ip := range addrs[n] {
						o.Answer = append(o.Answer, obs.Record{Name: n, Type: dns.TypeA, TTL: w.nsTTL, Data: ip})
					}
					p.Observations = append(p.Observations, o)
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// spread picks k addresses from nets distinct /16s, fresh each call.
func spread(rng *rand.Rand, nets, k int) []string {
	var out []string
	for range k {
		out = append(out, fmt.Sprintf("10.%d.%d.%d", rng.IntN(nets), rng.IntN(256), 1+rng.IntN(254)))
	}
	return out
}

func stableNS(int, int) ([]string, map[string][]string) {
	return []string{"ns1.host.test", "ns2.host.test"}, map[string][]string{"ns1.host.test": {"10.99.0.1"}, "ns2.host.test": {"10.99.0.2"}}
}

func classifyWorld(t *testing.T, w world, asn *ipmeta.DB) Verdict {
	t.Helper()
	c := Classifier{Meta: asn}
	return c.Classify("x.test", w.probes("x.test"), t0.Add(time.Hour))
}

func TestSingleFlux(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	v := classifyWorld(t, world{rounds: 5, vantages: 4, ttl: 60, nsTTL: 86400,
		addrs: func(int, int) []string { return spread(rng, 30, 6) }, ns: stableNS}, asnTable(t))
	if v.Verdict != SingleFlux {
		t.Fatalf("verdict %s: %s", v.Verdict, v.Evidence)
	}
	f := v.Features
	if f.ASNs < 20 || f.Networks != f.ASNs || f.Rounds != 5 || f.Vantages != 4 || f.MinTTL != 60 || f.SetChanges != 16 {
		t.Fatalf("features %+v", f)
	}
	if want := 1.32*float64(f.Addresses) + 18.54*float64(f.Networks) - 142.38; f.HolzScore != want {
		t.Fatalf("holz_score %v; want %v", f.HolzScore, want)
	}
	if !strings.Contains(v.Evidence, "NS stable") || !strings.Contains(v.Evidence, "ASNs") {
		t.Fatalf("evidence %q", v.Evidence)
	}
	// The agents are every address seen, sorted; no name servers for
	// single flux.
	if len(v.Agents) != f.Addresses || !slices.IsSortedFunc(v.Agents, func(a, b string) int {
		return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b))
	}) || v.NameServers != nil || v.NSAgents != nil {
		t.Fatalf("agents %v, name servers %v %v", v.Agents, v.NameServers, v.NSAgents)
	}
}

func TestSingleFluxWithoutASNTableUsesPrefixes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	v := classifyWorld(t, world{rounds: 4, vantages: 2, ttl: 60,
		addrs: func(int, int) []string { return spread(rng, 40, 8) }}, nil)
	if v.Verdict != SingleFlux || v.Features.ASNs != 0 || v.Features.Networks != v.Features.Prefixes16 {
		t.Fatalf("%s %+v", v.Verdict, v.Features)
	}
	if !strings.Contains(v.Evidence, "no ASN table") {
		t.Fatalf("evidence does not say the ASN table is missing: %q", v.Evidence)
	}
}

func TestCDNConcentratedInOneNetworkIsBenign(t *testing.T) {
	// 9 of 10 addresses inside one ASN, the rest spread over a few: many
	// addresses, several networks, short TTL, rotating: only the
	// concentration rule keeps it off the list.
	rng := rand.New(rand.NewPCG(5, 6))
	v := classifyWorld(t, world{rounds: 6, vantages: 4, ttl: 20, addrs: func(int, int) []string {
		out := []string{}
		for range 9 {
			out = append(out, fmt.Sprintf("10.7.%d.%d", rng.IntN(256), 1+rng.IntN(254)))
		}
		return append(out, fmt.Sprintf("10.%d.0.1", 10+rng.IntN(6)))
	}}, asnTable(t))
	if v.Verdict != Benign || !strings.Contains(v.Evidence, "concentrated") {
		t.Fatalf("%s: %s (%+v)", v.Verdict, v.Evidence, v.Features)
	}
	if v.Features.Networks < DefaultRules.MinNetworks || v.Features.HolzScore <= 0 {
		t.Fatalf("test does not isolate the concentration rule: %+v", v.Features)
	}
}

func TestFewNetworksIsBenign(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	v := classifyWorld(t, world{rounds: 6, vantages: 4, ttl: 20,
		addrs: func(int, int) []string { return spread(rng, 3, 8) }}, asnTable(t))
	if v.Verdict != Benign || v.Features.Networks != 3 || !strings.Contains(v.Evidence, "too few networks") {
		t.Fatalf("%s: %s", v.Verdict, v.Evidence)
	}
}

func TestLongTTLIsBenign(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	v := classifyWorld(t, world{rounds: 5, vantages: 4, ttl: 86400,
		addrs: func(int, int) []string { return spread(rng, 30, 6) }}, asnTable(t))
	if v.Verdict != Benign || !strings.Contains(v.Evidence, "long TTL") {
		t.Fatalf("%s: %s", v.Verdict, v.Evidence)
	}
}

func TestStableAnswersAreBenign(t *testing.T) {
	// Twelve fixed addresses in twelve networks: diverse, but never changing.
	fixed := spread(rand.New(rand.NewPCG(1, 1)), 12, 12)
	w := world{rounds: 5, vantages: 3, ttl: 60, addrs: func(int, int) []string { return fixed }}
	v := classifyWorld(t, w, nil)
	if v.Verdict != Benign || v.Features.SetChanges != 0 || !strings.Contains(v.Evidence, "stable") {
		t.Fatalf("%s: %s %+v", v.Verdict, v.Evidence, v.Features)
	}
	// Failed queries between them are not rotation.
	w.failed = func(r, v int) bool { return (r+v)%2 == 1 }
	v = classifyWorld(t, w, nil)
	if v.Verdict != Benign || v.Features.SetChanges != 0 || v.Features.Errors["timeout"] == 0 {
		t.Fatalf("timeouts counted as rotation: %s %+v", v.Verdict, v.Features)
	}
}

func TestInsufficientAndUnresolvable(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	v := classifyWorld(t, world{rounds: 1, vantages: 2, ttl: 60,
		addrs: func(int, int) []string { return spread(rng, 30, 6) }}, nil)
	if v.Verdict != InsufficientData {
		t.Fatalf("one round through two vantages: %s", v.Verdict)
	}
	// A spatial snapshot: one round through four vantages, each seeing its
	// own set of addresses in many networks, is enough.
	v = classifyWorld(t, world{rounds: 1, vantages: 4, ttl: 60,
		addrs: func(int, int) []string { return spread(rng, 30, 6) }}, nil)
	if v.Verdict != SingleFlux {
		t.Fatalf("one round through four disagreeing vantages: %s: %s", v.Verdict, v.Evidence)
	}
	v = classifyWorld(t, world{rounds: 3, vantages: 2, failed: func(int, int) bool { return true }}, nil)
	if v.Verdict != Unresolvable || !strings.Contains(v.Evidence, "timeout 6") {
		t.Fatalf("%s: %s", v.Verdict, v.Evidence)
	}
	c := Classifier{}
	if v := c.Classify("x.test", nil, t0); v.Verdict != InsufficientData {
		t.Fatalf("no probes: %s", v.Verdict)
	}
}

func TestDoubleFluxByNSAddresses(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	w := world{rounds: 5, vantages: 4, ttl: 60, nsTTL: 120,
		addrs: func(int, int) []string { return spread(rng, 30, 6) },
		ns: func(int, int) ([]string, map[string][]string) {
			names := []string{"ns1.x.test", "ns2.x.test"}
			return names, map[string][]string{names[0]: spread(rng, 30, 2), names[1]: spread(rng, 30, 2)}
		}}
	v := classifyWorld(t, w, asnTable(t))
	if v.Verdict != DoubleFlux || v.Features.NSNameChanges != 0 || v.Features.NSAddrChanges == 0 {
		t.Fatalf("%s: %s", v.Verdict, v.Evidence)
	}
	if !slices.Equal(v.NameServers, []string{"ns1.x.test", "ns2.x.test"}) || len(v.NSAgents) != v.Features.NSAddresses || len(v.Agents) != v.Features.Addresses {
		t.Fatalf("name servers %v, %d NS agents, %d agents", v.NameServers, len(v.NSAgents), len(v.Agents))
	}
	// The same name servers with long TTLs are not flux name servers.
	w.nsTTL = 86400
	if v := classifyWorld(t, w, asnTable(t)); v.Verdict != SingleFlux {
		t.Fatalf("long NS TTL: %s", v.Verdict)
	}
}

func TestDoubleFluxByNSNames(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	v := classifyWorld(t, world{rounds: 5, vantages: 4, ttl: 60, nsTTL: 300,
		addrs: func(int, int) []string { return spread(rng, 30, 6) },
		ns: func(r, _ int) ([]string, map[string][]string) {
			// A new pair of names every round, each with a fixed address.
			a, b := fmt.Sprintf("ns%d.a.test", r), fmt.Sprintf("ns%d.b.test", r)
			return []string{a, b}, map[string][]string{a: {fmt.Sprintf("10.%d.1.1", 40+r)}, b: {fmt.Sprintf("10.%d.1.1", 60+r)}}
		}}, asnTable(t))
	if v.Verdict != DoubleFlux || v.Features.NSNames != 10 || v.Features.NSNameChanges == 0 {
		t.Fatalf("%s: %s %+v", v.Verdict, v.Evidence, v.Features)
	}
}

func TestVantageDisagreement(t *testing.T) {
	// Each vantage sees its own fixed set: no change over time, all
	// disagreement across vantages (a spatial snapshot of flux).
	sets := [][]string{}
	rng := rand.New(rand.NewPCG(17, 18))
	for range 4 {
		sets = append(sets, spread(rng, 30, 6))
	}
	v := classifyWorld(t, world{rounds: 3, vantages: 4, ttl: 60,
		addrs: func(_, v int) []string { return sets[v] }}, asnTable(t))
	if v.Features.SetChanges != 0 || v.Features.VantageDisagreement != 1 || v.Verdict != SingleFlux {
		t.Fatalf("%s %+v", v.Verdict, v.Features)
	}
}

// BenchmarkClassify classifies one flux domain's history of 8 rounds
// through 4 vantages.
func BenchmarkClassify(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	probes := world{rounds: 8, vantages: 4, ttl: 60, nsTTL: 86400,
		addrs: func(int, int) []string { return spread(rng, 30, 6) }, ns: stableNS}.probes("x.test")
	var t testing.T
	c := Classifier{Meta: asnTable(&t)}
	b.ReportAllocs()
	for b.Loop() {
		if v := c.Classify("x.test", probes, t0); v.Verdict != SingleFlux {
			b.Fatal(v.Verdict)
		}
	}
}

// The score reads as one: from 0 to 1, flux at least 0.5 (double flux at
// least 0.75), anything else under 0.5 and an allowlisted name 0, rising
// with the networks and addresses within each verdict, whatever the Holz f.
func TestScoreRisesWithTheFluxEvidence(t *testing.T) {
	r := &DefaultRules
	rot := Features{MinTTL: 60, SetChanges: 3}
	with := func(f Features, addrs, nets int) Features { f.Addresses, f.Networks = addrs, nets; return f }
	for _, tt := range []struct {
		name     string
		verdict  string
		f        Features
		allow    bool
		min, max float64
	}{
		{"no answer", Unresolvable, Features{}, false, 0, 0},
		{"one round", InsufficientData, with(rot, 50, 10), false, 0, 0},
		{"allowlisted pool", Benign, with(rot, 300, 40), true, 0, 0},
		{"stable name", Benign, with(Features{MinTTL: 3600}, 2, 1), false, 0, 0.1},
		{"CDN", Benign, with(rot, 183, 2), false, 0.2, 0.45},
		{"huge benign", Benign, with(rot, 5000, 500), false, 0.44, 0.45},
		{"narrow flux", SingleFlux, with(rot, 191, 3), false, 0.5, 0.75},
		{"wide flux", SingleFlux, with(rot, 256, 32), false, 0.75, 0.75},
		{"small double flux", DoubleFlux, with(rot, 8, 4), false, 0.75, 0.9},
		{"wide double flux", DoubleFlux, with(rot, 1000, 100), false, 1, 1},
	} {
		if got := score(tt.verdict, tt.f, r, tt.allow); got < tt.min || got > tt.max {
			t.Errorf("%s: score %v, want %v to %v", tt.name, got, tt.min, tt.max)
		}
	}
	for _, verdict := range []string{Benign, SingleFlux, DoubleFlux} {
		prev := -1.0
		for _, n := range []int{1, 2, 4, 8, 16, 32} {
			got := score(verdict, with(rot, 8*n, n), r, false)
			if got < prev {
				t.Errorf("%s: score falls from %v to %v at %d networks", verdict, prev, got, n)
			}
			prev = got
		}
	}
}
