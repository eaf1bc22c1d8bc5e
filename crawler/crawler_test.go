package crawler

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
	"github.com/fluxwatch/fluxwatch/obs"
)

// serve starts a DNS server on 127.0.0.1 (UDP and TCP on the same port)
// and returns its address. It is shut down when the test ends.
func serve(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	return dnstest.Serve(t, h)
}

// serveRaw starts a UDP server on 127.0.0.1 that answers each query with
// the messages reply returns for it, in order and a few microseconds
// apart, whatever they say; queries that do not unpack are ignored. It
// returns the server's address and stops when the test ends.
func serveRaw(t *testing.T, reply func(q *dns.Msg) []*dns.Msg) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			for i, m := range reply(q) {
				if i > 0 {
					time.Sleep(5 * time.Microsecond)
				}
				b, err := m.Pack()
				if err != nil {
					panic(err) // a broken test
				}
				pc.WriteTo(b, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// queriers returns both query paths with the same options: the engine on
// long-lived sockets and the plain miekg/dns client.
func queriers(t *testing.T, opts ClientOptions) map[string]Querier {
	t.Helper()
	e, err := NewEngine(EngineOptions{ClientOptions: opts, Sockets: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return map[string]Querier{"engine": e, "client": NewClient(opts)}
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNormalizeKeepsOnlyTheCNAMEChain(t *testing.T) {
	answer := []dns.RR{
		rr(t, "edge.cdn.test. 20 IN A 192.0.2.2"),
		rr(t, "WWW.Shop.test. 300 IN CNAME edge.cdn.test."),
		rr(t, "edge.cdn.test. 20 IN A 192.0.2.1"),
		rr(t, "edge.cdn.test. 20 IN A 192.0.2.1"),        // duplicate
		rr(t, "evil.test. 20 IN A 203.0.113.66"),         // not in the chain: injected
		rr(t, "edge.cdn.test. 20 IN AAAA 2001:db8::1"),   // wrong type for an A query
		rr(t, "www.shop.test. 4294967295 IN TXT \"hi\""), // not kept
	}
	got := NormalizeAnswer("www.shop.test", dns.TypeA, answer)
	want := []obs.Record{
		{Name: "edge.cdn.test", Type: dns.TypeA, TTL: 20, Data: "192.0.2.1"},
		{Name: "edge.cdn.test", Type: dns.TypeA, TTL: 20, Data: "192.0.2.2"},
		{Name: "www.shop.test", Type: dns.TypeCNAME, TTL: 300, Data: "edge.cdn.test"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %+v; want %+v", i, got[i], want[i])
		}
	}
}

func TestNormalizeClampsTTLAndSurvivesCNAMELoop(t *testing.T) {
	answer := []dns.RR{
		rr(t, "a.test. 60 IN CNAME b.test."),
		rr(t, "b.test. 60 IN CNAME a.test."),
		rr(t, "b.test. 4294967295 IN A 192.0.2.9"),
	}
	got := NormalizeAnswer("a.test", dns.TypeA, answer)
	if len(got) != 3 || got[1].TTL != 1<<31-1 || got[1].Data != "192.0.2.9" {
		t.Fatalf("got %+v", got)
	}
}

// fluxHandler answers A with a different address each query and NS with
// two name servers, whose addresses it also serves.
func fluxHandler(n *atomic.Int32) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		switch {
		case q.Qtype == dns.TypeA && q.Name == "flux.test.":
			i := n.Add(1)
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
				A: net.IPv4(198, 51, 100, byte(i))})
		case q.Qtype == dns.TypeNS && q.Name == "flux.test.":
			for _, ns := range []string{"ns1.host.test.", "ns2.host.test."} {
				m.Answer = append(m.Answer, &dns.NS{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: ns})
			}
		case q.Qtype == dns.TypeA && strings.HasSuffix(q.Name, "host.test."):
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
				A: net.IPv4(192, 0, 2, 53)})
		case q.Name == "gone.test.":
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	}
}

func TestProbeRecordsRotationAndNSHosts(t *testing.T) {
	var n atomic.Int32
	addr := serve(t, fluxHandler(&n))
	for name, q := range queriers(t, ClientOptions{Timeout: time.Second}) {
		t.Run(name, func(t *testing.T) { testProbe(t, q, addr) })
	}
}

func testProbe(t *testing.T, q Querier, addr string) {
	c := &Crawler{Querier: q, NSHosts: true}
	round := NewRound()
	p1 := c.Probe(context.Background(), "flux.test", addr, round)
	p2 := c.Probe(context.Background(), "flux.test", addr, round)
	// A, AAAA, NS, then A and AAAA of each name server.
	if len(p1.Observations) != 7 {
		t.Fatalf("probe has %d observations: %+v", len(p1.Observations), p1.Observations)
	}
	a1, a2 := p1.Observations[0].Answer, p2.Observations[0].Answer
	if len(a1) != 1 || len(a2) != 1 || a1[0].Data == a2[0].Data {
		t.Fatalf("A answers did not rotate: %v then %v", a1, a2)
	}
	if o := p1.Observations[3]; o.Name != "ns1.host.test" || o.QType != dns.TypeA || len(o.Answer) != 1 || o.Answer[0].Data != "192.0.2.53" {
		t.Fatalf("ns1 A observation = %+v", o)
	}
	if p1.Observations[0].Flags&obs.FlagRA == 0 {
		t.Error("RA flag not recorded")
	}
}

func TestRoundAsksSharedNameServerOnce(t *testing.T) {
	var nsQueries atomic.Int32
	var n atomic.Int32
	inner := fluxHandler(&n)
	addr := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if strings.HasSuffix(r.Question[0].Name, "host.test.") {
			nsQueries.Add(1)
		}
		inner(w, r)
	})
	e, err := NewEngine(EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := &Crawler{Querier: e, NSHosts: true}
	round := NewRound()
	for i := range 3 {
		p := c.Probe(context.Background(), "flux.test", addr, round)
		// Every probe carries the shared lookups, the later ones from the
		// round's cache.
		var shared, addrs int
		for _, o := range p.Observations {
			if strings.HasSuffix(o.Name, "host.test") && o.Err == obs.OK {
				shared++
				addrs += len(o.Answer)
			}
		}
		if shared != 4 || addrs != 2 { // A and AAAA of 2 hosts; each has one A
			t.Fatalf("probe %d carries %d name-server lookups with %d addresses; want 4 with 2", i+1, shared, addrs)
		}
	}
	if got := nsQueries.Load(); got != 4 { // 2 hosts × A, AAAA: once per round
		t.Fatalf("name server hosts asked %d times in one round; want 4", got)
	}
}

func TestErrorClasses(t *testing.T) {
	var n atomic.Int32
	addr := serve(t, fluxHandler(&n))
	// A socket that never answers, and one that answers garbage.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	garbage, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := garbage.ReadFrom(buf)
			if err != nil {
				return
			}
			// The query's ID, then bytes that are no DNS message.
			garbage.WriteTo(append(buf[:2:2], 0x81, 0x80, 0, 1, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff), from)
			_ = n
		}
	}()
	for name, q := range queriers(t, ClientOptions{Timeout: 300 * time.Millisecond, Retries: -1}) {
		t.Run(name, func(t *testing.T) {
			c := &Crawler{Querier: q}
			if o := c.observe(context.Background(), addr, "gone.test", dns.TypeA); o.Err != obs.NXDomain || o.Rcode != dns.RcodeNameError {
				t.Errorf("NXDOMAIN recorded as %v rcode %d", o.Err, o.Rcode)
			}
			if o := c.observe(context.Background(), silent.LocalAddr().String(), "flux.test", dns.TypeA); o.Err != obs.Timeout {
				t.Errorf("silent vantage recorded as %v", o.Err)
			}
			if o := c.observe(context.Background(), garbage.LocalAddr().String(), "flux.test", dns.TypeA); o.Err != obs.Malformed {
				t.Errorf("garbage recorded as %v", o.Err)
			}
		})
	}
}

func TestMismatchedResponsesAreDiscarded(t *testing.T) {
	// The server answers every query twice: first a forged response (wrong
	// ID, or right ID with another question), then the real one. Only the
	// real one may be used.
	forged := "203.0.113.66"
	for _, mode := range []string{"wrong-id", "wrong-question"} {
		t.Run(mode, func(t *testing.T) {
			addr := serveRaw(t, func(q *dns.Msg) []*dns.Msg {
				bad := new(dns.Msg)
				bad.SetReply(q)
				if mode == "wrong-id" {
					bad.Id = q.Id + 1
				} else {
					bad.Question[0].Name = "other.test."
				}
				bad.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(forged)}}
				good := new(dns.Msg)
				good.SetReply(q)
				good.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.1")}}
				return []*dns.Msg{bad, good}
			})
			for name, q := range queriers(t, ClientOptions{Timeout: 300 * time.Millisecond, Retries: 2}) {
				c := &Crawler{Querier: q}
				o := c.observe(context.Background(), addr, "flux.test", dns.TypeA)
				for _, r := range o.Answer {
					if r.Data == forged {
						t.Fatalf("%s: forged answer stored: %+v", name, o)
					}
				}
				// The engine keeps waiting past any forgery; the plain client
				// can only do so for a wrong ID.
				if (name == "engine" || mode == "wrong-id") && (o.Err != obs.OK || len(o.Answer) != 1) {
					t.Fatalf("%s: real answer after a forged one not used: %+v", name, o)
				}
			}
		})
	}
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	addr := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for i := range 200 {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(10, 0, byte(i/250), byte(i%250))})
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncate(1232)
		}
		w.WriteMsg(m)
	})
	capped := (&Crawler{Querier: NewClient(ClientOptions{}), MaxRecords: 150}).observe(context.Background(), addr, "big.test", dns.TypeA)
	if len(capped.Answer) != 150 || capped.Flags&obs.FlagCapped == 0 {
		t.Fatalf("an answer over MaxRecords kept %d records, flags %v", len(capped.Answer), capped.Flags)
	}
	for name, q := range queriers(t, ClientOptions{}) {
		c := &Crawler{Querier: q}
		for range 2 { // the second one reuses the engine's pooled connection
			o := c.observe(context.Background(), addr, "big.test", dns.TypeA)
			if o.Err != obs.OK || len(o.Answer) != 200 {
				t.Fatalf("%s: got %v with %d records; want all 200 over TCP", name, o.Err, len(o.Answer))
			}
		}
	}
}

func TestRandomizedCaseMustBeEchoed(t *testing.T) {
	echo := serve(t, func(w dns.ResponseWriter, r *dns.Msg) { // as resolvers do: the question comes back as asked
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
		w.WriteMsg(m)
	})
	lower := serve(t, func(w dns.ResponseWriter, r *dns.Msg) { // a forger who cannot see the query
		m := new(dns.Msg)
		m.SetReply(r)
		m.Question[0].Name = strings.ToLower(m.Question[0].Name)
		w.WriteMsg(m)
	})
	e, err := NewEngine(EngineOptions{ClientOptions: ClientOptions{Timeout: 200 * time.Millisecond, Retries: -1}, RandomizeCase: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := &Crawler{Querier: e}
	name := "some-long-name.with.many.letters.test"
	if o := c.observe(context.Background(), echo, name, dns.TypeA); o.Err != obs.OK || len(o.Answer) != 1 || o.Answer[0].Name != name {
		t.Fatalf("echoing resolver: %+v", o)
	}
	if o := c.observe(context.Background(), lower, name, dns.TypeA); o.Err != obs.Malformed {
		t.Fatalf("answer without the asked case: %v", o.Err)
	}
	if e.Stats().Mismatched == 0 {
		t.Fatal("the lower-cased answer was not counted")
	}
	mixed := 0
	for range 20 {
		if randomCase(name) != name {
			mixed++
		}
		if !strings.EqualFold(randomCase(name), name) {
			t.Fatal("randomCase changed more than case")
		}
	}
	if mixed < 19 {
		t.Fatalf("randomCase left the name as it was %d times in 20", 20-mixed)
	}
}

// A lookup the round has settled (a shared name server's address, a
// zone's referral) is copied into the probe without asking again and
// without an allocation: most probes of a round find theirs settled.
func TestSettledRoundLookupAllocatesNothing(t *testing.T) {
	round := NewRound()
	q := &countingQuerier{}
	c := &Crawler{Querier: q}
	asked := &q.asked
	k := roundKey{"127.0.0.1:53", "ns1.example.net", dns.TypeA}
	var wg sync.WaitGroup
	var first, again obs.Observation
	c.fetch(context.Background(), round, &wg, k, "", &first)
	wg.Wait()
	if asked.Load() != 1 || first.Name != "ns1.example.net" {
		t.Fatalf("first lookup: %d queries, observation of %q", asked.Load(), first.Name)
	}
	allocs := testing.AllocsPerRun(100, func() {
		c.fetch(context.Background(), round, &wg, k, "", &again)
	})
	wg.Wait()
	if allocs != 0 || asked.Load() != 1 || again.Name != first.Name {
		t.Fatalf("settled lookup: %.0f allocations, %d queries in all; want 0 and 1", allocs, asked.Load())
	}
}

// countingQuerier answers every query NOERROR without records, counting them.
type countingQuerier struct{ asked atomic.Int32 }

func (q *countingQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	q.asked.Add(1)
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Response = true
	return m, time.Millisecond, nil
}
