package scheduler

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/storage"
)

// blackHole answers through every vantage but one, which times out on
// every query.
type blackHole struct {
	dead string
	mu   sync.Mutex
	sent map[string]int
}

func (b *blackHole) Query(_ context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	b.mu.Lock()
	b.sent[vantage]++
	b.mu.Unlock()
	if vantage == b.dead {
		return nil, 0, &net.OpError{Op: "read", Net: "udp", Err: timeoutErr{}}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Response = true
	if qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 7)}}
	}
	return m, time.Millisecond, nil
}

// A vantage that black-holes every query for a simulated hour of rounds
// every 30 seconds: the scheduler keeps it resting (so it is asked a
// bounded number of times), goroutines do not pile up, and the heap does
// not grow with the rounds.
func TestBlackHoleForAnHourStaysBounded(t *testing.T) {
	domains := names(40)
	store := testStore(t, domains)
	q := &blackHole{dead: "127.0.0.1:2", sent: map[string]int{}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := New(q, crawler.Crawler{}, store, Options{
		Vantages: []Vantage{{Addr: "127.0.0.1:1"}, {Addr: "127.0.0.1:2"}}, Workers: 8, Now: clock,
	})
	w := store.NewWriter(storage.WriterOptions{})
	defer w.Close()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	baseGoroutines := runtime.NumGoroutine()
	var heapAt10 uint64
	const rounds = 120 // one hour at 30 s
	for r := range rounds {
		if _, err := s.Round(context.Background(), domains, w); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if g := runtime.NumGoroutine(); g > baseGoroutines+4 {
			t.Fatalf("round %d: %d goroutines, %d before the first", r, g, baseGoroutines)
		}
		if r == 10 {
			heapAt10 = heap()
		}
		now = now.Add(30 * time.Second)
	}
	// Live heap: the history is on disk, not in memory. Allow a few MB of
	// noise (caches fill to their bounds early).
	if h := heap(); h > heapAt10+4<<20 {
		t.Fatalf("heap grew from %d to %d bytes over %d rounds", heapAt10, h, rounds-10)
	}
	// The first round may have every domain in flight before the first
	// failure comes back (with no rate limit nothing holds them); after
	// that the vantage rests 30 s doubling to 10 min, and only its canary
	// is asked when each rest ends: a dozen in an hour at most, not 120
	// rounds of 40 domains.
	q.mu.Lock()
	dead, alive := q.sent["127.0.0.1:2"], q.sent["127.0.0.1:1"]
	q.mu.Unlock()
	t.Logf("dead vantage asked %d times, healthy one %d", dead, alive)
	if dead > len(domains)*len(crawler.DefaultQTypes)+12 || alive < rounds*len(domains) {
		t.Fatalf("dead vantage asked %d times, healthy one %d", dead, alive)
	}
	if h := s.Health()["127.0.0.1:2"]; h.Healthy || h.Skipped == 0 {
		t.Fatalf("dead vantage health %+v", h)
	}
}
