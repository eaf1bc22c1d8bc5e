package crawler

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// barrier answers no query until want queries are waiting at once: a
// probe that asks one after another never gets there, and its queries
// time out after patience.
type barrier struct {
	want     int
	patience time.Duration

	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func newBarrier(want int) *barrier {
	return &barrier{want: want, patience: 5 * time.Second, open: make(chan struct{})}
}

func (b *barrier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	b.mu.Lock()
	b.waiting++
	if b.waiting == b.want {
		close(b.open)
	}
	open := b.open
	b.mu.Unlock()
	select {
	case <-open:
	case <-time.After(b.patience):
		return nil, 0, &net.OpError{Op: "read", Net: "udp", Err: errTimeout.Err}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Response = true
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	switch {
	case qtype == dns.TypeNS:
		m.Answer = []dns.RR{rr(name + ". 60 IN NS ns1.flux.test."), rr(name + ". 60 IN NS ns2.flux.test.")}
	case qtype == dns.TypeA:
		m.Answer = []dns.RR{rr(name + ". 60 IN A 192.0.2.1")}
	case qtype == dns.TypeAAAA:
		m.Answer = []dns.RR{rr(name + ". 60 IN AAAA 2001:db8::1")}
	}
	return m, time.Millisecond, nil
}

// The queries of one probe that do not depend on each other go out
// together: A, AAAA and NS at once, then the four address lookups of the
// two name servers (which need the NS answer) at once. Asked one after
// another, each would wait out its barrier's patience and fail.
func TestProbeAsksTogether(t *testing.T) {
	c := Crawler{Querier: &stagedQuerier{stages: []*barrier{newBarrier(3), newBarrier(4)}}, NSHosts: true}
	p := c.Probe(context.Background(), "flux.test", "127.0.0.1:53", NewRound())
	var failed []string
	for _, o := range p.Observations {
		if o.Err != obs.OK {
			failed = append(failed, o.Name+"/"+dns.TypeToString[o.QType])
		}
	}
	if len(p.Observations) != 3+4 || len(failed) > 0 {
		t.Fatalf("%d observations, not answered together: %v", len(p.Observations), failed)
	}
	// In the fixed order: the types as configured, then the name
	// servers' addresses by host.
	var got []string
	for _, o := range p.Observations {
		got = append(got, o.Name+"/"+dns.TypeToString[o.QType])
	}
	want := []string{"flux.test/A", "flux.test/AAAA", "flux.test/NS",
		"ns1.flux.test/A", "ns1.flux.test/AAAA", "ns2.flux.test/A", "ns2.flux.test/AAAA"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("observations in order %v; want %v", got, want)
		}
	}
}

// stagedQuerier sends the domain's own queries to the first barrier and
// the name servers' to the second.
type stagedQuerier struct{ stages []*barrier }

func (s *stagedQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if name == "flux.test" {
		return s.stages[0].Query(ctx, vantage, name, qtype)
	}
	return s.stages[1].Query(ctx, vantage, name, qtype)
}
