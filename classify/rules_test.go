package classify

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
)

// narrow spreads addresses over 3 ASNs with 4 /16s each (10.0-11 → three
// ASNs through the table below) and many /24s.
func TestNarrowFluxIsFlux(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	tab := "10.0.0.0\t10.3.255.255\t64600\tDE\tISP-A\n10.4.0.0\t10.7.255.255\t64601\tFR\tISP-B\n10.8.0.0\t10.11.255.255\t64602\tIT\tISP-C\n"
	meta := loadMeta(t, tab)
	w := world{rounds: 4, vantages: 4, ttl: 60, addrs: func(int, int) []string { return spread(rng, 12, 6) }}
	v := classifyWorld(t, w, meta)
	if v.Verdict != SingleFlux || v.Features.ASNs != 3 || !strings.HasPrefix(v.Evidence, "narrow flux") {
		t.Fatalf("%s: %s (%+v)", v.Verdict, v.Evidence, v.Features)
	}
	// The same three networks with addresses in a handful of /24s (CDN
	// edges) are not flux.
	w.addrs = func(int, int) []string {
		var out []string
		for range 6 {
			out = append(out, fmt.Sprintf("10.%d.%d.%d", 4*rng.IntN(3), rng.IntN(2), 1+rng.IntN(254)))
		}
		return out
	}
	if v := classifyWorld(t, w, meta); v.Verdict != Benign {
		t.Fatalf("three networks in few /24s: %s: %s", v.Verdict, v.Evidence)
	}
}

// Narrow flux watched for long: hundreds of addresses pile up in the 12
// /16s of three ASNs, so the /16 entropy over the whole window, divided by
// log2 of the addresses, falls below FluxBuster's threshold; each answer
// still spreads over as many /16s as it has addresses. A CDN in the same
// three networks, whose every answer sits in one /16, stays benign.
func TestNarrowFluxWatchedForLongIsFlux(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	tab := "10.0.0.0\t10.3.255.255\t64600\tDE\tISP-A\n10.4.0.0\t10.7.255.255\t64601\tFR\tISP-B\n10.8.0.0\t10.11.255.255\t64602\tIT\tISP-C\n"
	meta := loadMeta(t, tab)
	w := world{rounds: 40, vantages: 4, ttl: 60, addrs: func(int, int) []string { return spread(rng, 12, 6) }}
	v := classifyWorld(t, w, meta)
	if v.Verdict != SingleFlux || v.Features.Diversity >= DefaultRules.NarrowMinDiversity ||
		v.Features.AnswerDiversity < DefaultRules.NarrowMinAnswerDiversity {
		t.Fatalf("%s: %s (diversity %.2f over the window, %.2f per answer)", v.Verdict, v.Evidence, v.Features.Diversity, v.Features.AnswerDiversity)
	}
	// Each answer from one /16 (a CDN's regional edges), many /24s: benign.
	w.addrs = func(r, vt int) []string {
		net := (r + vt) % 12
		var out []string
		for range 6 {
			out = append(out, fmt.Sprintf("10.%d.%d.%d", net, rng.IntN(256), 1+rng.IntN(254)))
		}
		return out
	}
	if v := classifyWorld(t, w, meta); v.Verdict != Benign || v.Features.AnswerDiversity != 0 {
		t.Fatalf("answers each in one /16: %s (answer diversity %.2f): %s", v.Verdict, v.Features.AnswerDiversity, v.Evidence)
	}
	// The same CDN dual-stack: two A in one /16 and one AAAA (in ISP-A's
	// IPv6 block) per answer. A /16 and a /48 are not two places of one
	// answer: each answer is measured alone, and neither has 3 addresses.
	meta = loadMeta(t, tab+"2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64600\tDE\tISP-A\n")
	w.addrs = func(r, vt int) []string {
		net := (r + vt) % 12
		return []string{fmt.Sprintf("10.%d.%d.%d", net, rng.IntN(256), 1+rng.IntN(254)),
			fmt.Sprintf("10.%d.%d.%d", net, rng.IntN(256), 1+rng.IntN(254)),
			fmt.Sprintf("2001:db8::%x:%x", net, 1+rng.IntN(65535))}
	}
	if v := classifyWorld(t, w, meta); v.Verdict != Benign {
		t.Fatalf("dual-stack answers each in one /16: %s (answer diversity %.2f): %s", v.Verdict, v.Features.AnswerDiversity, v.Evidence)
	}
}

func TestCNAMEIntoCDNIsNeverFlux(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	probes := world{rounds: 4, vantages: 4, ttl: 20, addrs: func(int, int) []string { return spread(rng, 30, 6) }}.probes("x.test")
	for i := range probes {
		o := &probes[i].Observations[0]
		for j := range o.Answer {
			o.Answer[j].Name = "e1.edge.bigcdn.test"
		}
		o.Answer = append(o.Answer, obs.Record{Name: "x.test", Type: dns.TypeCNAME, TTL: 300, Data: "e1.edge.bigcdn.test"})
		obs.Sort(o.Answer)
	}
	c := Classifier{Meta: asnTable(t)}
	if v := c.Classify("x.test", probes, t0); v.Verdict != SingleFlux {
		t.Fatalf("without the suffix list: %s (the test needs flux-like answers)", v.Verdict)
	}
	c.CDNSuffixes = []string{"other.test", "bigcdn.test"}
	v := c.Classify("x.test", probes, t0)
	if v.Verdict != Benign || v.Features.CDN != "bigcdn.test" || !strings.Contains(v.Evidence, "CNAME into CDN bigcdn.test") {
		t.Fatalf("%s: %s", v.Verdict, v.Evidence)
	}
}

func TestAllowlistedNameIsNeverListed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tranco.csv")
	os.WriteFile(path, []byte("rank,domain\n1,google.com\n2,pool.time.test\n"), 0o644)
	allow, err := LoadAllowlist(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(25, 26))
	probes := world{rounds: 5, vantages: 4, ttl: 150, addrs: func(int, int) []string { return spread(rng, 60, 4) }}.probes("x.test")
	for i := range probes {
		probes[i].Domain = "2.pool.time.test"
		for j := range probes[i].Observations {
			o := &probes[i].Observations[j]
			o.Name = "2.pool.time.test"
			for k := range o.Answer {
				o.Answer[k].Name = o.Name
			}
		}
	}
	c := Classifier{Meta: asnTable(t)}
	if v := c.Classify("2.pool.time.test", probes, t0); v.Verdict != SingleFlux || v.Score < 0.5 {
		t.Fatalf("without the allowlist: %s, score %v (the test needs flux-like answers)", v.Verdict, v.Score)
	}
	c.Allow = allow
	v := c.Classify("2.pool.time.test", probes, t0)
	if v.Verdict != Benign || v.Confidence != 1 || !strings.Contains(v.Evidence, "allowlisted (pool.time.test from "+path+":3)") {
		t.Fatalf("%s %.2f: %s", v.Verdict, v.Confidence, v.Evidence)
	}
	// Its Holz f is high, its score nil: the score reads as the verdict.
	if v.Score != 0 || v.Features.HolzScore <= 0 {
		t.Fatalf("allowlisted: score %v, holz_score %v", v.Score, v.Features.HolzScore)
	}
}

func TestAllowlistFormats(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.txt")
	os.WriteFile(plain, []byte("# names\nExample.COM.\n\nbücher.example # IDN\n"), 0o644)
	a, err := LoadAllowlist(plain)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"example.com": true, "www.example.com": true, "xn--bcher-kva.example": true,
		"notexample.com": false, "com": false} {
		if got, _ := a.Match(name); got != want {
			t.Errorf("Match(%q) = %v", name, got)
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("1,ok.test\nx,y,z\n3,*.wild.test\n"), 0o644)
	if _, err := LoadAllowlist(bad); err == nil || err.Error() != bad+":2: want NAME or RANK,NAME" {
		t.Errorf("bad rank line: %v", err)
	}
	os.WriteFile(bad, []byte("1,ok.test\n3,*.wild.test\n"), 0o644)
	if _, err := LoadAllowlist(bad); err == nil || err.Error() != bad+":2: wildcard not allowed" {
		t.Errorf("bad name: %v", err)
	}
	var nilList *Allowlist
	if ok, _ := nilList.Match("x.test"); ok {
		t.Error("nil allowlist matched")
	}
}

func TestDefaultCDNSuffixesLoad(t *testing.T) {
	if len(DefaultCDNSuffixes) < 20 || cdnSuffix("a1.g.akamaiedge.net", DefaultCDNSuffixes) != "akamaiedge.net" ||
		cdnSuffix("notakamaiedge.net", DefaultCDNSuffixes) != "" {
		t.Fatalf("DefaultCDNSuffixes: %d entries", len(DefaultCDNSuffixes))
	}
}

func TestGeoDNSIsBenign(t *testing.T) {
	// Each vantage gets its own few addresses, all inside one provider.
	v := classifyWorld(t, world{rounds: 5, vantages: 4, ttl: 60, addrs: func(_, v int) []string {
		return []string{fmt.Sprintf("10.7.%d.1", v), fmt.Sprintf("10.7.%d.2", v), fmt.Sprintf("10.8.%d.1", v)}
	}}, asnTable(t))
	if v.Verdict != Benign || v.Features.VantageDisagreement != 1 {
		t.Fatalf("%s: %s", v.Verdict, v.Evidence)
	}
}

func TestDoubleFluxByNSDisagreement(t *testing.T) {
	// Each vantage sees its own name server addresses, stable over time.
	rng := rand.New(rand.NewPCG(27, 28))
	nsSets := map[int][]string{}
	for v := range 4 {
		nsSets[v] = spread(rng, 30, 2)
	}
	w := world{rounds: 3, vantages: 4, ttl: 60, nsTTL: 300,
		addrs: func(int, int) []string { return spread(rng, 30, 6) },
		ns: func(_, v int) ([]string, map[string][]string) {
			return []string{"ns1.x.test"}, map[string][]string{"ns1.x.test": nsSets[v]}
		}}
	v := classifyWorld(t, w, asnTable(t))
	if v.Verdict != DoubleFlux || v.Features.NSAddrChanges != 0 || v.Features.NSDisagreement != 1 {
		t.Fatalf("%s: %s", v.Verdict, v.Evidence)
	}
}

func TestDoubleFluxByDelegation(t *testing.T) {
	// The vantages see stable name servers; only the parent zone's
	// referral shows their glue rotating.
	rng := rand.New(rand.NewPCG(29, 30))
	probes := world{rounds: 4, vantages: 2, ttl: 60, nsTTL: 86400,
		addrs: func(int, int) []string { return spread(rng, 30, 6) }, ns: stableNS}.probes("x.test")
	for i := range probes {
		d := obs.Observation{Time: probes[i].Start, Name: "x.test", QType: dns.TypeNS, Flags: obs.FlagDelegation}
		d.Answer = append(d.Answer, obs.Record{Name: "x.test", Type: dns.TypeNS, TTL: 300, Data: "ns1.x.test"})
		for _, ip := range spread(rng, 30, 3) {
			d.Answer = append(d.Answer, obs.Record{Name: "ns1.x.test", Type: dns.TypeA, TTL: 300, Data: ip})
		}
		probes[i].Observations = append(probes[i].Observations, d)
	}
	c := Classifier{Meta: asnTable(t)}
	v := c.Classify("x.test", probes, t0)
	if v.Verdict != DoubleFlux || v.Features.Delegations != 4 || v.Features.DelegationChanges != 3 || !strings.Contains(v.Evidence, "parent zone") {
		t.Fatalf("%s: %s %+v", v.Verdict, v.Evidence, v.Features)
	}
}

func loadMeta(t *testing.T, tsv string) *ipmeta.DB {
	t.Helper()
	tab, err := ipmeta.Load(strings.NewReader(tsv), "t.tsv")
	if err != nil {
		t.Fatal(err)
	}
	db := &ipmeta.DB{}
	db.AddASN(tab)
	return db
}
