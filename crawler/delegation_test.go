package crawler

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/fluxwatch/fluxwatch/obs"
)

func TestZone(t *testing.T) {
	for name, want := range map[string][2]string{
		"www.shop.test":          {"shop.test", "test"},
		"evil.example":           {"evil.example", "example"},
		"a.b.evil.co.uk":         {"evil.co.uk", "co.uk"},
		"x.y.z.github.io":        {"z.github.io", "github.io"},
		"login.bank.example.com": {"example.com", "com"},
	} {
		zone, parent, ok := Zone(name)
		if !ok || zone != want[0] || parent != want[1] {
			t.Errorf("Zone(%s) = %s, %s, %v; want %v", name, zone, parent, ok, want)
		}
	}
}

// TestZoneAgreesWithThePublicSuffixPackage holds Zone's one look at the
// list to what EffectiveTLDPlusOne and a second PublicSuffix of its result
// say, across the list's wildcard and exception rules and names it refuses.
func TestZoneAgreesWithThePublicSuffixPackage(t *testing.T) {
	for _, name := range []string{
		"www.shop.test", "a.b.evil.co.uk", "co.uk", "uk", "com", "example.com",
		"x.y.z.github.io", "github.io", "a.b.kawasaki.jp", "b.kawasaki.jp", "city.kawasaki.jp",
		"a.city.kawasaki.jp", "www.ck", "a.www.ck", "x.ck", "a.x.ck", "MiXeD.Example.COM",
		"192.0.2.1", "", ".", "a..b.com", ".example.com", "example.com.", "unknowntld",
		"a.unknowntld", "xn--55qx5d.cn", "a.b.xn--55qx5d.cn", "_dmarc.example.org",
	} {
		zone, parent, ok := Zone(name)
		wantZone, err := publicsuffix.EffectiveTLDPlusOne(name)
		if ok != (err == nil) || zone != wantZone {
			t.Errorf("Zone(%q) = %q, %v; EffectiveTLDPlusOne = %q, %v", name, zone, ok, wantZone, err)
			continue
		}
		if !ok {
			continue
		}
		if wantParent, _ := publicsuffix.PublicSuffix(zone); parent != wantParent {
			t.Errorf("Zone(%q) parent %q; PublicSuffix(%q) = %q", name, parent, zone, wantParent)
		}
	}
}

// TestDelegationAsksTheParentDirectly runs a resolver that knows the
// parent zone's servers and a parent server that answers referrals; the
// probe must carry the referral (NS set and glue), flagged, and the parent
// must have been asked without recursion, once for two vantages.
func TestDelegationAsksTheParentDirectly(t *testing.T) {
	var parentQueries atomic.Int32
	var rdSet atomic.Bool
	parent := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		parentQueries.Add(1)
		if r.RecursionDesired {
			rdSet.Store(true)
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "evil.test.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 300}, Ns: "ns1.evil.test."}}
		m.Extra = []dns.RR{
			&dns.A{Hdr: dns.RR_Header{Name: "ns1.evil.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(198, 51, 100, 7)},
			&dns.A{Hdr: dns.RR_Header{Name: "unrelated.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(203, 0, 113, 1)},
		}
		w.WriteMsg(m)
	})
	_, portText, _ := net.SplitHostPort(parent)
	port, _ := strconv.Atoi(portText)
	resolver := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case q.Name == "test." && q.Qtype == dns.TypeNS:
			m.Answer = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 172800}, Ns: "a.nic.test."}}
		case q.Name == "a.nic.test." && q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.nic.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 172800}, A: net.IPv4(127, 0, 0, 1)}}
		}
		w.WriteMsg(m)
	})
	c := &Crawler{
		Querier:    NewClient(ClientOptions{Timeout: time.Second}),
		Direct:     NewClient(ClientOptions{Timeout: time.Second, NoRecursion: true}),
		Delegation: true,
		ParentPort: port,
		QTypes:     []uint16{dns.TypeA},
	}
	round := NewRound()
	for range 2 { // two vantages' probes in one round share the referral
		p := c.Probe(context.Background(), "www.evil.test", resolver, round)
		var d *obs.Observation
		for i := range p.Observations {
			if p.Observations[i].Flags&obs.FlagDelegation != 0 {
				d = &p.Observations[i]
			}
		}
		if d == nil || d.Name != "evil.test" || d.QType != dns.TypeNS || len(d.Answer) != 2 ||
			d.Answer[0].Data != "ns1.evil.test" && d.Answer[1].Data != "ns1.evil.test" {
			t.Fatalf("delegation observation = %+v", d)
		}
		for _, r := range d.Answer {
			if r.Data == "203.0.113.1" {
				t.Fatal("glue for a name outside the NS set was kept")
			}
		}
	}
	if parentQueries.Load() != 1 || rdSet.Load() {
		t.Fatalf("parent asked %d times (want 1), RD set: %v", parentQueries.Load(), rdSet.Load())
	}
}
