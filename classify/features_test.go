package classify

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
)

// metaDB maps 10.N.0.0/16 to AS 64500+N, country by N mod 3.
func metaDB(t *testing.T) *ipmeta.DB {
	t.Helper()
	var b strings.Builder
	for n := range 100 {
		b.WriteString("10." + strconv.Itoa(n) + ".0.0\t10." + strconv.Itoa(n) + ".255.255\t" + strconv.Itoa(64500+n) + "\t" + []string{"US", "RU", "BR"}[n%3] + "\tTEST\n")
	}
	tab, err := ipmeta.Load(strings.NewReader(b.String()), "t.tsv")
	if err != nil {
		t.Fatal(err)
	}
	db := &ipmeta.DB{}
	db.AddASN(tab)
	return db
}

func a(name string, ttl uint32, ips ...string) obs.Observation {
	o := obs.Observation{Name: name, QType: dns.TypeA}
	for _, ip := range ips {
		o.Answer = append(o.Answer, obs.Record{Name: name, Type: dns.TypeA, TTL: ttl, Data: ip})
	}
	return o
}

func ns(domain string, ttl uint32, names ...string) obs.Observation {
	o := obs.Observation{Name: domain, QType: dns.TypeNS}
	for _, n := range names {
		o.Answer = append(o.Answer, obs.Record{Name: domain, Type: dns.TypeNS, TTL: ttl, Data: n})
	}
	return o
}

func probeAt(vantage string, min int, os ...obs.Observation) obs.Probe {
	at := t0.Add(time.Duration(min) * time.Minute)
	for i := range os {
		os[i].Time = at
	}
	return obs.Probe{Domain: "x.test", Vantage: vantage, Start: at, Observations: os}
}

// TestFeatureValues pins every feature on a small hand-made history, so a
// feature that stops being computed (or is computed differently) fails.
func TestFeatureValues(t *testing.T) {
	deleg := ns("x.test", 300, "ns1.x.test")
	deleg.Flags = obs.FlagDelegation
	deleg.Answer = append(deleg.Answer, obs.Record{Name: "ns1.x.test", Type: dns.TypeA, TTL: 300, Data: "10.50.0.1"})
	deleg2 := deleg
	deleg2.Answer = []obs.Record{deleg.Answer[0], {Name: "ns1.x.test", Type: dns.TypeA, TTL: 300, Data: "10.51.0.1"}}
	cname := obs.Observation{Name: "x.test", QType: dns.TypeA, Answer: []obs.Record{
		{Name: "x.test", Type: dns.TypeCNAME, TTL: 600, Data: "edge.x.test"},
		{Name: "edge.x.test", Type: dns.TypeA, TTL: 60, Data: "10.1.1.1"},
		{Name: "edge.x.test", Type: dns.TypeA, TTL: 60, Data: "10.2.1.1"},
	}}
	timeout := obs.Observation{Name: "x.test", QType: dns.TypeAAAA, Err: obs.Timeout}
	probes := []obs.Probe{
		// Round 1: both vantages, different sets; NS host addresses differ.
		probeAt("v1", 0, cname, ns("x.test", 3600, "ns1.x.test"), a("ns1.x.test", 120, "10.50.0.1"), deleg),
		probeAt("v2", 0, a("x.test", 30, "10.3.1.1", "10.3.2.1"), ns("x.test", 3600, "ns1.x.test"), a("ns1.x.test", 120, "10.51.0.1"), deleg),
		// Round 2: v1 changes, v2 times out (no evidence), NS name changes on v1.
		probeAt("v1", 2, a("x.test", 30, "10.4.1.1", "10.1.1.1"), ns("x.test", 3600, "ns2.y.test"), a("ns2.y.test", 120, "10.52.0.1")),
		probeAt("v2", 2, timeout),
		// Round 3: v2 answers its round-1 set again; the parent's glue changed.
		probeAt("v2", 4, a("x.test", 30, "10.3.1.1", "10.3.2.1"), deleg2),
	}
	f, _ := extract("x.test", probes, metaDB(t), []string{"x.test"})
	want := Features{
		Probes: 5, Vantages: 2, Rounds: 2,
		Addresses: 5, Prefixes24: 5, Prefixes16: 4, Prefixes48: 0,
		ASNs: 4, Countries: 3, Networks: 4, TopNetworkShare: 0.4,
		Diversity: 0.83, ASNsPerAddress: 0.8, Growth: 1,
		MinTTL: 30, MedianTTL: 30,
		SetChanges: 1, ChangeRate: 0.5, VantageDisagreement: 1,
		CNAMEs: 1, CNAMETarget: "edge.x.test", CDN: "x.test",
		NSNames: 2, NSNameChanges: 1, NSAddresses: 3, NSAddrChanges: 1, NSMinTTL: 120, NSDisagreement: 1,
		NSNetworks: 3, NSASNs: 3,
		Delegations: 2, DelegationNSNames: 1, DelegationChanges: 1, GlueAddresses: 2, DelegationMinTTL: 300,
		Errors:    map[string]int{"timeout": 1},
		HolzScore: 1.32*5 + 18.54*4 - 142.38,
		FirstSeen: t0, LastSeen: t0.Add(4 * time.Minute), ASNTable: true,
	}
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v; want %v", name, got, want)
		}
	}
	check("Probes", f.Probes, want.Probes)
	check("Vantages", f.Vantages, want.Vantages)
	check("Rounds", f.Rounds, want.Rounds)
	check("Addresses", f.Addresses, want.Addresses)
	check("Prefixes24", f.Prefixes24, want.Prefixes24)
	check("Prefixes16", f.Prefixes16, want.Prefixes16)
	check("ASNs", f.ASNs, want.ASNs)
	check("Countries", f.Countries, want.Countries)
	check("Networks", f.Networks, want.Networks)
	check("TopNetworkShare", f.TopNetworkShare, want.TopNetworkShare)
	check("Diversity", f.Diversity, want.Diversity)
	check("AnswerDiversity", f.AnswerDiversity, 0.0) // no answer had 3 addresses
	check("ASNsPerAddress", f.ASNsPerAddress, want.ASNsPerAddress)
	check("Growth", f.Growth, want.Growth)
	check("MinTTL", f.MinTTL, want.MinTTL)
	check("MedianTTL", f.MedianTTL, want.MedianTTL)
	check("SetChanges", f.SetChanges, want.SetChanges)
	check("ChangeRate", f.ChangeRate, want.ChangeRate)
	check("VantageDisagreement", f.VantageDisagreement, want.VantageDisagreement)
	check("CNAMEs", f.CNAMEs, want.CNAMEs)
	check("CNAMETarget", f.CNAMETarget, want.CNAMETarget)
	check("CDN", f.CDN, want.CDN)
	check("NSNames", f.NSNames, want.NSNames)
	check("NSNameChanges", f.NSNameChanges, want.NSNameChanges)
	check("NSAddresses", f.NSAddresses, want.NSAddresses)
	check("NSAddrChanges", f.NSAddrChanges, want.NSAddrChanges)
	check("NSMinTTL", f.NSMinTTL, want.NSMinTTL)
	check("NSDisagreement", f.NSDisagreement, want.NSDisagreement)
	check("NSNetworks", f.NSNetworks, want.NSNetworks)
	check("NSASNs", f.NSASNs, want.NSASNs)
	check("Delegations", f.Delegations, want.Delegations)
	check("DelegationNSNames", f.DelegationNSNames, want.DelegationNSNames)
	check("DelegationChanges", f.DelegationChanges, want.DelegationChanges)
	check("GlueAddresses", f.GlueAddresses, want.GlueAddresses)
	check("DelegationMinTTL", f.DelegationMinTTL, want.DelegationMinTTL)
	check("Errors", f.Errors["timeout"], 1)
	check("HolzScore", round2(f.HolzScore), round2(want.HolzScore))
	check("FirstSeen", f.FirstSeen, want.FirstSeen)
	check("LastSeen", f.LastSeen, want.LastSeen)
	check("ASNTable", f.ASNTable, true)
	if len(f.PerVantage) != 2 || f.PerVantage[0] != (VantageFeatures{"v1", 2, 3, 1}) || f.PerVantage[1] != (VantageFeatures{"v2", 2, 2, 0}) {
		t.Errorf("PerVantage = %+v", f.PerVantage)
	}
	if len(f.Sample) != 5 || f.Sample[0] != "10.1.1.1" || len(f.TopNetworks) != 3 || !strings.HasPrefix(f.TopNetworks[0], "AS64503 US ×2") {
		t.Errorf("Sample %v TopNetworks %v", f.Sample, f.TopNetworks)
	}
}
