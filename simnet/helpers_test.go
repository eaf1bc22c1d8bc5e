package simnet_test

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/simnet"
)

// start starts a world for one test and closes it on cleanup.
func start(t *testing.T, cfg simnet.Config) *simnet.World {
	t.Helper()
	w, err := simnet.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// query asks server about name and qtype over network ("udp" or "tcp").
func query(t *testing.T, server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s %s via %s/%s: %v", name, dns.TypeToString[qtype], network, server, err)
	}
	return resp
}

// addrs returns the A and AAAA addresses of an answer, sorted.
func addrs(m *dns.Msg) []netip.Addr {
	var out []netip.Addr
	for _, rr := range m.Answer {
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		default:
			continue
		}
		a, _ := netip.AddrFromSlice(ip)
		out = append(out, a.Unmap())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// firstOfKind returns the world's first domain of kind, in name order.
func firstOfKind(t *testing.T, w *simnet.World, kind string) simnet.Domain {
	t.Helper()
	for _, d := range w.Domains() {
		if d.Kind == kind {
			return d
		}
	}
	t.Fatalf("no %s domain in the world", kind)
	return simnet.Domain{}
}

// ttlOf returns the TTL of the last answer record (the address records
// after any CNAME).
func ttlOf(t *testing.T, m *dns.Msg) uint32 {
	t.Helper()
	if len(m.Answer) == 0 {
		t.Fatalf("empty answer:\n%v", m)
	}
	return m.Answer[len(m.Answer)-1].Header().Ttl
}

// sleep waits d of simulated time.
func sleep(t *testing.T, w *simnet.World, d time.Duration) {
	t.Helper()
	if err := w.Sleep(t.Context(), d); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
}

func seconds(ttl uint32) time.Duration { return time.Duration(ttl) * time.Second }
