package crawler

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

const (
	fuzzQName = "www.flux.test"
	fuzzZone  = "flux.test"
)

// packedResponse packs a response to q whose sections hold the records
// given in presentation form.
func packedResponse(f *testing.F, q string, qtype uint16, answer, ns, extra []string) []byte {
	f.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q), qtype)
	m.Response = true
	for _, s := range []struct {
		dst *[]dns.RR
		rrs []string
	}{{&m.Answer, answer}, {&m.Ns, ns}, {&m.Extra, extra}} {
		for _, text := range s.rrs {
			rr, err := dns.NewRR(text)
			if err != nil {
				f.Fatalf("%s: %v", text, err)
			}
			*s.dst = append(*s.dst, rr)
		}
	}
	p, err := m.Pack()
	if err != nil {
		f.Fatal(err)
	}
	return p
}

// FuzzNormalize feeds whatever miekg/dns can unpack to Normalize and
// referral and checks the records they keep: canonical names, sorted
// without duplicates, TTLs within RFC 2181, addresses that parse, and only
// the records each is meant to keep (the query name's CNAME chain; the
// zone's NS set and its glue).
func FuzzNormalize(f *testing.F) {
	f.Add(packedResponse(f, fuzzQName, dns.TypeA, []string{
		"WWW.Flux.Test. 300 IN CNAME edge.CDN.test.",
		"edge.cdn.test. 20 IN CNAME edge2.cdn.test.",
		"edge2.cdn.test. 20 IN A 192.0.2.1",
		"edge2.cdn.test. 20 IN A 192.0.2.1",
		"EDGE2.cdn.test. 4294967295 IN A 192.0.2.2",
		"evil.test. 20 IN A 203.0.113.66",
		"www.flux.test. 20 IN AAAA 2001:db8::1",
		"www.flux.test. 20 IN TXT \"hi\"",
	}, nil, nil))
	f.Add(packedResponse(f, fuzzQName, dns.TypeA, []string{ // a CNAME loop
		"www.flux.test. 60 IN CNAME b.flux.test.",
		"b.flux.test. 60 IN CNAME www.flux.test.",
		"b.flux.test. 60 IN A 192.0.2.9",
	}, nil, nil))
	f.Add(packedResponse(f, fuzzQName, dns.TypeA, []string{ // the chain's link is no IN record
		"www.flux.test. 60 CH CNAME b.flux.test.",
		"b.flux.test. 60 IN CNAME c.flux.test.",
		"c.flux.test. 60 IN A 192.0.2.10",
	}, nil, nil))
	f.Add(packedResponse(f, fuzzQName, dns.TypeNS, []string{
		"www.flux.test. 3600 IN NS NS1.Host.test.",
		"www.flux.test. 3600 CH NS ns2.host.test.",
	}, nil, nil))
	f.Add(packedResponse(f, fuzzZone, dns.TypeNS, nil, []string{ // a referral with glue
		"flux.test. 172800 IN NS ns1.flux.test.",
		"FLUX.test. 172800 IN NS ns2.host.test.",
		"other.test. 172800 IN NS ns3.host.test.",
	}, []string{
		"ns1.flux.test. 172800 IN A 198.51.100.53",
		"ns1.flux.test. 172800 IN AAAA 2001:db8::53",
		"ns3.host.test. 172800 IN A 203.0.113.53",
	}))
	f.Add(packedResponse(f, fuzzQName, dns.TypeA, []string{
		`www\.flux.test. 60 IN A 192.0.2.3`,
		`www.flux.test. 60 IN CNAME a\.b.flux.test.`,
		`a\.b.flux.test. 60 IN A 192.0.2.4`,
	}, nil, nil))
	f.Fuzz(func(t *testing.T, p []byte) {
		m := new(dns.Msg)
		if m.Unpack(p) != nil {
			return
		}
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS} {
			got := Normalize(fuzzQName, qtype, m)
			checkRecords(t, "Normalize", got)
			chain := map[string]bool{fuzzQName: true}
			for grew := true; grew; {
				grew = false
				for _, r := range got {
					if r.Type == dns.TypeCNAME && chain[r.Name] && !chain[r.Data] {
						chain[r.Data], grew = true, true
					}
				}
			}
			for _, r := range got {
				if !chain[r.Name] {
					t.Errorf("Normalize %s: %+v is not on the CNAME chain of %s", dns.TypeToString[qtype], r, fuzzQName)
				}
				if r.Type != dns.TypeCNAME && r.Type != qtype {
					t.Errorf("Normalize %s: kept %+v", dns.TypeToString[qtype], r)
				}
			}
		}

		got := referral(fuzzZone, dns.TypeNS, m)
		checkRecords(t, "referral", got)
		servers := map[string]bool{}
		for _, r := range got {
			if r.Type == dns.TypeNS {
				servers[r.Data] = true
			}
		}
		for _, r := range got {
			switch {
			case r.Type == dns.TypeNS && r.Name == fuzzZone:
			case (r.Type == dns.TypeA || r.Type == dns.TypeAAAA) && servers[r.Name]:
			default:
				t.Errorf("referral: kept %+v, neither an NS of %s nor glue for one", r, fuzzZone)
			}
		}
	})
}

// checkRecords checks what every kept record must be: canonical names,
// sorted as obs.Sort sorts them with no duplicates, a TTL of at most
// 2^31-1, and an address that parses for A and AAAA.
func checkRecords(t *testing.T, what string, rs []obs.Record) {
	t.Helper()
	canonical := func(name string) bool { return strings.ToLower(name) == name && !dns.IsFqdn(name) }
	for i, r := range rs {
		if !canonical(r.Name) {
			t.Errorf("%s: owner of %+v is not lower case without the trailing dot", what, r)
		}
		if r.TTL > 1<<31-1 {
			t.Errorf("%s: TTL of %+v above 2^31-1", what, r)
		}
		switch r.Type {
		case dns.TypeA, dns.TypeAAAA:
			if _, err := netip.ParseAddr(r.Data); err != nil {
				t.Errorf("%s: %+v: %v", what, r, err)
			}
		case dns.TypeCNAME, dns.TypeNS:
			if !canonical(r.Data) {
				t.Errorf("%s: data of %+v is not lower case without the trailing dot", what, r)
			}
		}
		if i > 0 {
			a, b := rs[i-1], r
			if !(a.Name < b.Name || a.Name == b.Name && (a.Type < b.Type || a.Type == b.Type && a.Data < b.Data)) {
				t.Errorf("%s: %+v then %+v: not sorted or a duplicate", what, a, b)
			}
		}
	}
}
