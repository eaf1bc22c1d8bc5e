package classify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// One lookup each of many random subdomains of a flux zone is evidence
// about the zone: it is classified (and listed) as a whole, while a zone
// whose subdomains all answer the same address is benign and a zone with a
// single measured name is left to that name's own verdict.
func TestZonesClassifiedFromTheirNames(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rng := rand.New(rand.NewPCG(51, 52))
	var names []string
	var probes []obs.Probe
	add := func(name string, at time.Time, addrs []string) {
		names = append(names, name)
		o := obs.Observation{Time: at, Name: name, QType: dns.TypeA}
		for _, a := range addrs {
			o.Answer = append(o.Answer, obs.Record{Name: name, Type: dns.TypeA, TTL: 60, Data: a})
		}
		obs.Sort(o.Answer)
		probes = append(probes, obs.Probe{Domain: name, Vantage: "127.0.0.1:53", Start: at, Observations: []obs.Observation{o}})
	}
	for i := range 12 {
		at := t0.Add(time.Duration(i) * 3 * time.Minute)
		add(fmt.Sprintf("x%d.evil.test", i), at, spread(rng, 40, 5))
		add(fmt.Sprintf("www%d.fine.test", i), at, []string{"10.1.2.3"})
	}
	add("only.lonely.test", t0, spread(rng, 40, 5))
	// A seeded zone with a name under it: judged once, as a zone.
	add("seeded.test", t0, spread(rng, 40, 5))
	add("www.seeded.test", t0.Add(3*time.Minute), spread(rng, 40, 5))
	// A zone with flux names under it but also a name that is stably
	// benign on its own: a legitimate zone with hijacked names.
	for i := range 8 {
		add(fmt.Sprintf("x%d.mixed.test", i), t0.Add(time.Duration(i)*3*time.Minute), spread(rng, 40, 5))
	}
	for r := range 4 {
		add("www.mixed.test", t0.Add(time.Duration(r)*5*time.Minute), []string{"10.3.3.3"})
	}
	// More names than a zone is judged on.
	for i := range maxZoneNames + 20 {
		add(fmt.Sprintf("n%03d.big.test", i), t0.Add(time.Duration(i%10)*time.Minute), spread(rng, 40, 5))
	}
	if _, err := store.AddDomains(names, "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	c := Classifier{Meta: asnTable(t)}
	got := map[string]Verdict{}
	times := map[string]int{}
	counts, err := c.Run(context.Background(), store, time.Hour, t0.Add(time.Hour), func(v Verdict) error {
		got[v.Domain] = v
		times[v.Domain]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every name is classified once per run, the seeded zone apex too.
	for name, n := range times {
		if n != 1 {
			t.Errorf("%s classified %d times in one run", name, n)
		}
	}
	// Every domain counted once, the seeded zone by its zone verdict.
	total := 0
	for _, v := range Verdicts {
		total += counts[v]
	}
	if total != len(got) || got["seeded.test"].Names != 2 {
		t.Fatalf("counts %v for %d domains; seeded.test %+v", counts, len(got), got["seeded.test"])
	}
	if v := got["x3.evil.test"]; v.Verdict != InsufficientData {
		t.Fatalf("one lookup of one name: %s (%s)", v.Verdict, v.Evidence)
	}
	if v := got["evil.test"]; v.Verdict != SingleFlux || v.Names != 12 || v.Listing == nil {
		t.Fatalf("evil.test: %s, %d names, listing %v: %s", v.Verdict, v.Names, v.Listing, v.Evidence)
	}
	if v := got["fine.test"]; v.Verdict != Benign || v.Names != 12 {
		t.Fatalf("fine.test: %s, %d names: %s", v.Verdict, v.Names, v.Evidence)
	}
	if v := got["mixed.test"]; v.Verdict != Benign || !strings.Contains(v.Evidence, "1 of its names are benign on their own") {
		t.Fatalf("mixed.test: %s: %s", v.Verdict, v.Evidence)
	}
	if v := got["big.test"]; v.Names != maxZoneNames+20 || !strings.Contains(v.Evidence, fmt.Sprintf("the first %d judged", maxZoneNames)) {
		t.Fatalf("big.test: %d names: %s", v.Names, v.Evidence)
	}
	if v, ok := got["lonely.test"]; ok {
		t.Fatalf("a zone with one measured name was classified: %+v", v)
	}
	var listed []string
	Each(store, true, func(v Verdict) error { listed = append(listed, v.Domain); return nil })
	if len(listed) != 3 || listed[0] != "big.test" || listed[1] != "evil.test" || listed[2] != "seeded.test" {
		t.Fatalf("listed %v; want the flux zone", listed)
	}
}

// A double-flux zone measured through random subdomains: each name's NS
// answer (synthesised from the zone's wildcard, so owned by the name)
// names the zone's name servers, whose addresses rotate over many
// networks. Merged, the names' name servers are the zone's: double flux.
func TestZoneDoubleFluxFromItsNamesNameServers(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rng := rand.New(rand.NewPCG(71, 72))
	var names []string
	var probes []obs.Probe
	for i := range 12 {
		name := fmt.Sprintf("r%d.dbl.test", i)
		names = append(names, name)
		at := t0.Add(time.Duration(i) * 3 * time.Minute)
		a := obs.Observation{Time: at, Name: name, QType: dns.TypeA}
		for _, ip := range spread(rng, 40, 5) {
			a.Answer = append(a.Answer, obs.Record{Name: name, Type: dns.TypeA, TTL: 60, Data: ip})
		}
		obs.Sort(a.Answer)
		ns := obs.Observation{Time: at, Name: name, QType: dns.TypeNS}
		hosts := []string{"ns1.dbl.test", "ns2.dbl.test"}
		var nsAddrs []obs.Observation
		for _, h := range hosts {
			ns.Answer = append(ns.Answer, obs.Record{Name: name, Type: dns.TypeNS, TTL: 300, Data: h})
			o := obs.Observation{Time: at, Name: h, QType: dns.TypeA}
			for _, ip := range spread(rng, 40, 2) {
				o.Answer = append(o.Answer, obs.Record{Name: h, Type: dns.TypeA, TTL: 300, Data: ip})
			}
			obs.Sort(o.Answer)
			nsAddrs = append(nsAddrs, o)
		}
		p := obs.Probe{Domain: name, Vantage: "127.0.0.1:53", Start: at, Observations: append([]obs.Observation{a, ns}, nsAddrs...)}
		probes = append(probes, p)
	}
	if _, err := store.AddDomains(names, "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	c := Classifier{Meta: asnTable(t)}
	var zone *Verdict
	if _, err := c.Run(context.Background(), store, time.Hour, t0.Add(time.Hour), func(v Verdict) error {
		if v.Domain == "dbl.test" {
			zone = &v
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if zone == nil || zone.Verdict != DoubleFlux || zone.Features.NSAddresses < 20 || len(zone.NSAgents) != zone.Features.NSAddresses {
		t.Fatalf("dbl.test: %+v", zone)
	}
}

// A seeded apex left to the zone pass whose names went away meanwhile (a
// seeds remove between the two reads) is judged alone, like any name.
func TestZoneApexWithoutNamesJudgedAlone(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rng := rand.New(rand.NewPCG(81, 82))
	probes := world{rounds: 4, vantages: 3, ttl: 60, addrs: func(int, int) []string { return spread(rng, 30, 6) }}.probes("solo.test")
	store.AddDomains([]string{"solo.test"}, "", t0)
	if _, err := store.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	c := Classifier{Meta: asnTable(t)}
	alone := c.Classify("solo.test", probes, t0.Add(time.Hour))
	groups := zoneGroups{}
	groups.apex("solo.test")
	counts := map[string]int{}
	var got []Verdict
	if err := c.classifyZones(context.Background(), store, groups, time.Hour, t0.Add(time.Hour), counts, func(v Verdict) error {
		got = append(got, v)
		return nil
	}, &runNetworks{}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Names != 0 || got[0].Evidence != alone.Evidence || got[0].Verdict != SingleFlux || counts[SingleFlux] != 1 {
		t.Fatalf("zone pass of a lone apex: %+v; alone: %s", got, alone.Evidence)
	}
	if v, err := Load(store, "solo.test"); err != nil || v == nil || !v.Listed() {
		t.Fatalf("stored: %+v, %v", v, err)
	}
}
