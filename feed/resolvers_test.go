package feed

// Helpers for the integration tests that run real resolvers from Debian
// (bind9, unbound, knot-resolver) against the feed on loopback.

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/internal/dnstest"
	"github.com/fluxwatch/fluxwatch/results"
)

// upstreamAddr is the address every name resolves to at the test upstream.
const upstreamAddr = "192.0.2.1"

// eventually polls check every 100ms until it returns true or timeout
// passes; on timeout the test fails with what and check's last state.
func eventually(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s still not %s: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// query asks a resolver (recursion desired) over UDP.
func query(addr, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// answer describes a resolver's answer to name A: "NXDOMAIN", the
// address, or the failure.
func answer(addr, name string) string {
	r, err := query(addr, name, dns.TypeA)
	if err != nil {
		return "error: " + err.Error()
	}
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return "NODATA"
}

// soaSerial returns the serial a server holds for zone, or a description
// of why it has none.
func soaSerial(addr, zone string) (uint32, string) {
	r, err := query(addr, zone, dns.TypeSOA)
	if err != nil {
		return 0, err.Error()
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, fmt.Sprintf("serial %d", soa.Serial)
		}
	}
	return 0, dns.RcodeToString[r.Rcode]
}

// expectAnswers checks a resolver's answers: want maps names to
// "NXDOMAIN" (blocked) or upstreamAddr (passed).
func expectAnswers(t *testing.T, resolver string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got := answer(resolver, name); got != w {
			t.Errorf("%s A via %s: %s, want %s", name, resolver, got, w)
		}
	}
}

// startUpstream runs the authoritative server the resolvers forward every
// query to: any name has the A record upstreamAddr and nothing else, so an
// NXDOMAIN can only come from the resolver's policy. Nothing leaves
// loopback. Its TTL is one second: a resolver that answers from its cache
// before it applies its policy (PowerDNS Recursor's packet cache does)
// would otherwise pass a name for a minute after the zone lists it.
func startUpstream(t *testing.T) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.Authoritative, m.RecursionAvailable = true, true
		if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
			a, _ := dns.NewRR(r.Question[0].Name + " 1 IN A " + upstreamAddr)
			m.Answer = []dns.RR{a}
		}
		w.WriteMsg(m)
	})
	return dnstest.Serve(t, h)
}

// writeRPZ writes the RPZ export of listed (listed single-flux verdicts) with
// serial to path, through the exporter the daemon uses, atomically.
func writeRPZ(t *testing.T, path string, serial uint32, listed ...string) {
	t.Helper()
	var vs []classify.Verdict
	for _, d := range listed {
		vs = append(vs, classify.Verdict{Domain: d, Verdict: classify.SingleFlux, Score: 0.62, Listing: &classify.Listing{}})
	}
	vs = append(vs, classify.Verdict{Domain: "benign.test", Verdict: classify.Benign})
	err := results.WriteFileAtomic(path, func(w io.Writer) error {
		return results.Write(w, "rpz", vs, results.Options{Zone: "fluxwatch.rpz", Serial: serial})
	})
	if err != nil {
		t.Fatal(err)
	}
}
