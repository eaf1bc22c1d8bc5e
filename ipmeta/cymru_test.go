package ipmeta

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// fakeCymru answers like origin.asn.cymru.com for 192.0.2.0/24 and
// 2001:db8::/32, NXDOMAIN otherwise, and counts the questions.
type fakeCymru struct{ asked atomic.Int32 }

func (f *fakeCymru) Query(_ context.Context, _, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	f.asked.Add(1)
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response = true
	var txt string
	switch {
	case strings.HasSuffix(name, ".2.0.192.origin.asn.cymru.com."):
		txt = "64496 64497 | 192.0.2.0/24 | NL | ripencc | 2010-01-01"
	case strings.HasSuffix(name, ".8.b.d.0.1.0.0.2.origin6.asn.cymru.com."):
		txt = "64498 | 2001:db8::/32 | JP | apnic | 2010-01-01"
	default:
		m.Rcode = dns.RcodeNameError
		return m, time.Millisecond, nil
	}
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 3600}, Txt: []string{txt}}}
	return m, time.Millisecond, nil
}

func TestCymruName(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.77":  "77.2.0.192.origin.asn.cymru.com.",
		"2001:db8::1": "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.origin6.asn.cymru.com.",
	} {
		if got := CymruName(netip.MustParseAddr(in)); got != want {
			t.Errorf("CymruName(%s) = %s; want %s", in, got, want)
		}
	}
	if _, _, err := ParseCymru("x | y"); err == nil {
		t.Error("short answer accepted")
	}
}

func TestCymruFallback(t *testing.T) {
	tab, _ := Load(strings.NewReader("198.51.100.0\t198.51.100.255\t64500\tUS\tTABLE\n"), "t.tsv")
	db := &DB{}
	db.AddASN(tab)
	f := &fakeCymru{}
	c := &Cymru{Querier: f, Resolver: "127.0.0.1:53"}
	db.AddFallback(c)
	addrs := []netip.Addr{
		netip.MustParseAddr("198.51.100.1"), // in the table: not asked
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("192.0.2.2"), // same prefix: answered from the cache
		netip.MustParseAddr("2001:db8::5"),
		netip.MustParseAddr("203.0.113.9"), // unknown to the service
	}
	if info, ok := db.Lookup(addrs[1]); ok {
		t.Fatalf("fallback answered before Prefetch: %+v", info)
	}
	asked, err := c.Prefetch(context.Background(), db, addrs)
	if err != nil || asked != 3 {
		t.Fatalf("Prefetch asked %d, %v; want 3 (one per unknown prefix)", asked, err)
	}
	check(t, db, []want{
		{"198.51.100.1", 64500, "TABLE", "US", true},
		{"192.0.2.200", 64496, "", "NL", true},
		{"2001:db8:1::1", 64498, "", "JP", true},
		{"203.0.113.9", 0, "", "", false},
	})
	// Everything is cached now, the misses too.
	if asked, _ := c.Prefetch(context.Background(), db, addrs); asked != 0 || f.asked.Load() != 3 {
		t.Fatalf("second Prefetch asked %d (server saw %d)", asked, f.asked.Load())
	}
}

// TestCymruThroughResolver asks through a real loopback DNS server with the
// crawler-like client semantics (a Querier over UDP).
func TestCymruThroughResolver(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeCymru{}
	dnstest.Start(t, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m, _, _ := fake.Query(context.Background(), "", r.Question[0].Name, r.Question[0].Qtype)
		m.Id = r.Id
		w.WriteMsg(m)
	})})
	c := &Cymru{Querier: udpQuerier{}, Resolver: pc.LocalAddr().String()}
	db := &DB{}
	db.AddFallback(c)
	if _, err := c.Prefetch(context.Background(), db, []netip.Addr{netip.MustParseAddr("192.0.2.9")}); err != nil {
		t.Fatal(err)
	}
	check(t, db, []want{{"192.0.2.9", 64496, "", "NL", true}})
}

type udpQuerier struct{}

func (udpQuerier) Query(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return (&dns.Client{Timeout: time.Second}).ExchangeContext(ctx, m, server)
}
