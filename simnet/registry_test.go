package simnet_test

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/simnet"
)

// askParent asks a registry server about name and qtype without recursion
// (or with, if rd), over UDP.
func askParent(t *testing.T, server, name string, qtype uint16, rd bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = rd
	m.SetEdns0(1232, false)
	resp, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, server)
	if err != nil {
		t.Fatalf("asking the registry %s about %s %s: %v", server, name, dns.TypeToString[qtype], err)
	}
	if resp.RecursionAvailable || resp.RecursionDesired != rd {
		t.Errorf("%s %s: RA %v, RD %v; want RA off and RD as asked (%v)", name, dns.TypeToString[qtype],
			resp.RecursionAvailable, resp.RecursionDesired, rd)
	}
	return resp
}

// parentServer finds the parent server of tld the way a crawler does:
// the TLD's NS through a vantage, then the first NS host's address, on the
// world's parent port.
func parentServer(t *testing.T, w *simnet.World, tld string) string {
	t.Helper()
	v := w.Vantages()[0]
	ns := query(t, v, "udp", tld, dns.TypeNS)
	if len(ns.Answer) == 0 {
		t.Fatalf("%s NS: no answer:\n%v", tld, ns)
	}
	host := ns.Answer[0].(*dns.NS).Ns
	a := addrs(query(t, v, "udp", host, dns.TypeA))
	if len(a) != 1 {
		t.Fatalf("%s A: %v, want one address", host, a)
	}
	return net.JoinHostPort(a[0].String(), strconv.Itoa(w.ParentPort()))
}

// tldOf returns the TLD of a domain name, with a trailing dot.
func tldOf(name string) string { return name[strings.LastIndexByte(name, '.')+1:] + "." }

// referral checks that resp is a referral for zone and returns its NS
// names and its glue, by host.
func referral(t *testing.T, resp *dns.Msg, zone string) (names []string, glue map[string][]netip.Addr, nsTTL uint32) {
	t.Helper()
	if resp.Rcode != dns.RcodeSuccess || resp.Authoritative || len(resp.Answer) != 0 || len(resp.Ns) == 0 {
		t.Fatalf("want a referral for %s (NOERROR, AA=0, no answer, NS in authority), got:\n%v", zone, resp)
	}
	for _, rr := range resp.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok || ns.Hdr.Name != dns.Fqdn(zone) {
			t.Fatalf("authority record %v is not an NS record of %s", rr, zone)
		}
		names = append(names, ns.Ns)
		nsTTL = ns.Hdr.Ttl
	}
	glue = make(map[string][]netip.Addr)
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		host := rr.Header().Name
		if !slices.Contains(names, host) || !strings.HasSuffix(host, "."+dns.Fqdn(zone)) {
			t.Errorf("glue %v for a host that is not an in-bailiwick name server of %s", rr, zone)
		}
		glue[host] = append(glue[host], addrs(&dns.Msg{Answer: []dns.RR{rr}})...)
	}
	return names, glue, nsTTL
}

func TestVantagesAnswerTLDNameServers(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 20, Vantages: 2})
	for _, tld := range []string{"test.", "example."} {
		for _, v := range w.Vantages() {
			ns := query(t, v, "udp", tld, dns.TypeNS)
			var names []string
			for _, rr := range ns.Answer {
				names = append(names, rr.(*dns.NS).Ns)
				if rr.Header().Ttl != 172800 {
					t.Errorf("%s NS TTL %d, want 172800", tld, rr.Header().Ttl)
				}
			}
			if want := []string{"a.nic." + tld, "b.nic." + tld}; !slices.Equal(names, want) {
				t.Errorf("%s NS %v, want %v", tld, names, want)
			}
			for _, host := range names {
				if got := addrs(query(t, v, "udp", host, dns.TypeA)); len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
					t.Errorf("%s A %v, want 127.0.0.1", host, got)
				}
				if resp := query(t, v, "udp", host, dns.TypeAAAA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
					t.Errorf("%s AAAA: want NOERROR and no answer, got\n%v", host, resp)
				}
			}
		}
	}
	if p := w.ParentPort(); p <= 0 || slices.Contains(w.Vantages(), "127.0.0.1:"+strconv.Itoa(p)) {
		t.Errorf("ParentPort %d", p)
	}
}

func TestRegistryRefersStableDelegations(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 21, Vantages: 1})
	v := w.Vantages()[0]
	flux := firstOfKind(t, w, simnet.KindFluxA)
	server := parentServer(t, w, tldOf(flux.Name))

	// A single-flux domain: its stable NS set, the same the resolver sees,
	// out of bailiwick (bulletproof DNS hosting), so without glue.
	var want []string
	for _, rr := range query(t, v, "udp", flux.Name, dns.TypeNS).Answer {
		want = append(want, rr.(*dns.NS).Ns)
	}
	for _, q := range []struct {
		name string
		rd   bool
	}{{flux.Name, false}, {"WWW." + strings.ToUpper(flux.Name), false}, {flux.Name, true}} {
		names, glue, ttl := referral(t, askParent(t, server, q.name, dns.TypeNS, q.rd), flux.Name)
		if !slices.Equal(names, want) || ttl != 172800 || len(glue) != 0 {
			t.Errorf("%s (RD=%v): NS %v TTL %d glue %v; want %v, TTL 172800, no glue", q.name, q.rd, names, ttl, glue, want)
		}
	}

	// The bulletproof DNS zone serving it has its name servers inside
	// itself: the referral carries their fixed addresses as glue.
	host := want[0]
	_, zone, _ := strings.Cut(host, ".")
	names, glue, _ := referral(t, askParent(t, server, host, dns.TypeA, false), zone)
	for _, h := range names {
		resolved := addrs(query(t, v, "udp", h, dns.TypeA))
		if len(glue[h]) == 0 || !slices.Equal(glue[h], resolved) {
			t.Errorf("glue of %s %v, the resolver says %v", h, glue[h], resolved)
		}
	}

	// A CDN name's registrable domain is the one below the TLD.
	cdn := firstOfKind(t, w, simnet.KindCDN)
	_, reg, _ := strings.Cut(cdn.Name, ".")
	if names, _, ttl := referral(t, askParent(t, parentServer(t, w, tldOf(reg)), cdn.Name, dns.TypeA, false), reg); len(names) != 2 || ttl != 172800 {
		t.Errorf("%s: referral NS %v TTL %d", cdn.Name, names, ttl)
	}
}

func TestRegistryAnswersForItsOwnZone(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 22, Vantages: 1})
	server := parentServer(t, w, "test.")
	for _, tc := range []struct {
		name    string
		qtype   uint16
		rcode   int
		aa      bool
		answers int
		soa     bool
	}{
		{"no-such-name.test", dns.TypeNS, dns.RcodeNameError, true, 0, true},
		{"www.no-such-name.test", dns.TypeA, dns.RcodeNameError, true, 0, true},
		{"test", dns.TypeSOA, dns.RcodeSuccess, true, 1, false},
		{"test", dns.TypeNS, dns.RcodeSuccess, true, 2, false},
		{"test", dns.TypeA, dns.RcodeSuccess, true, 0, true},
		{"a.nic.test", dns.TypeA, dns.RcodeSuccess, true, 1, false},
		{"example", dns.TypeSOA, dns.RcodeSuccess, true, 1, false},
		{"example.com", dns.TypeNS, dns.RcodeRefused, false, 0, false},
	} {
		resp := askParent(t, server, tc.name, tc.qtype, false)
		gotSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA
		if resp.Rcode != tc.rcode || resp.Authoritative != tc.aa || len(resp.Answer) != tc.answers || gotSOA != tc.soa {
			t.Errorf("%s %s: want rcode %s, AA %v, %d answers, SOA %v; got\n%v", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[tc.rcode], tc.aa, tc.answers, tc.soa, resp)
		}
		if gotSOA && resp.Ns[0].Header().Name != tldOf(strings.TrimSuffix(tc.name, ".")) {
			t.Errorf("%s: SOA of %s, want the TLD's", tc.name, resp.Ns[0].Header().Name)
		}
	}
	if resp := askParent(t, server, "test", dns.TypeNS, false); len(resp.Extra) < 3 { // a.nic, b.nic and OPT
		t.Errorf("test. NS without glue for a.nic and b.nic:\n%v", resp)
	}

	// Broken domains: an nxdomain one is not registered; a servfail one is
	// delegated to servers that do not answer for it; a nodata one normally.
	for _, kind := range []string{simnet.KindNXDomain, simnet.KindServfail, simnet.KindNoData} {
		d := firstOfKind(t, w, kind)
		resp := askParent(t, parentServer(t, w, tldOf(d.Name)), d.Name, dns.TypeNS, false)
		if kind == simnet.KindNXDomain {
			if resp.Rcode != dns.RcodeNameError || !resp.Authoritative {
				t.Errorf("%s (%s): want NXDOMAIN with AA, got\n%v", d.Name, kind, resp)
			}
			continue
		}
		referral(t, resp, d.Name)
	}

	// The parent side of a cut answers DS itself: no DS records.
	d := firstOfKind(t, w, simnet.KindStable)
	if resp := askParent(t, parentServer(t, w, tldOf(d.Name)), d.Name, dns.TypeDS, false); resp.Rcode != dns.RcodeSuccess ||
		!resp.Authoritative || len(resp.Answer) != 0 || len(resp.Ns) != 1 {
		t.Errorf("%s DS: want authoritative NODATA, got\n%v", d.Name, resp)
	}
}

func TestRegistryTellsTheDoubleFluxStory(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 23, Vantages: 1, Speed: fast})
	addrDomain := firstOfKind(t, w, simnet.KindFluxNSAddr)
	nameDomain := firstOfKind(t, w, simnet.KindFluxNSName)
	addrServer := parentServer(t, w, tldOf(addrDomain.Name))
	nameServer := parentServer(t, w, tldOf(nameDomain.Name))

	var prevGlue, prevNames string
	glueChanges, nameChanges := 0, 0
	allNames := make(map[string]bool)
	for round := range 4 {
		// flux-ns-addr: fixed NS names ns1..4 inside the domain, their
		// glue rotating with the hosts' own (short) TTL.
		resp := askParent(t, addrServer, addrDomain.Name, dns.TypeNS, false)
		names, glue, ttl := referral(t, resp, addrDomain.Name)
		if len(names) != 4 || ttl != 172800 || len(glue) != 4 {
			t.Fatalf("%s: NS %v TTL %d glue %v; want ns1..4, TTL 172800, glue for each", addrDomain.Name, names, ttl, glue)
		}
		for _, rr := range resp.Extra {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT && (h.Ttl < 60 || h.Ttl > 300) {
				t.Errorf("glue %v: TTL outside the NS hosts' 60..300", rr)
			}
		}
		var flat []string
		for _, h := range names {
			for _, a := range glue[h] {
				flat = append(flat, h+"="+a.String())
			}
		}
		if k := strings.Join(flat, " "); round > 0 && k != prevGlue {
			glueChanges++
		}
		prevGlue = strings.Join(flat, " ")

		// flux-ns-name: the NS names rotate at TTL 300; each lies in a
		// zone of its own, so no glue here.
		names, glue, ttl = referral(t, askParent(t, nameServer, nameDomain.Name, dns.TypeNS, false), nameDomain.Name)
		if len(names) < 2 || len(names) > 4 || ttl != 300 || len(glue) != 0 {
			t.Fatalf("%s: NS %v TTL %d glue %v; want 2..4 names, TTL 300, no glue", nameDomain.Name, names, ttl, glue)
		}
		if k := strings.Join(names, " "); round > 0 && k != prevNames {
			nameChanges++
		}
		prevNames = strings.Join(names, " ")
		for _, n := range names {
			allNames[n] = true
		}
		sleep(t, w, 301*time.Second)
	}
	if glueChanges < 2 || nameChanges < 2 || len(allNames) < 5 {
		t.Errorf("over 3 epochs: glue changed %d times, NS names %d times (%d distinct); want ≥ 2, ≥ 2, ≥ 5",
			glueChanges, nameChanges, len(allNames))
	}
}
