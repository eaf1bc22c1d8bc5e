package scheduler

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/storage"
)

// deadNames answers every query at once, except for the names it calls
// dead: those hang until released (or their context ends) and then time
// out. The canary and the others are answered. It counts the queries per
// name and the most it had unanswered at once.
type deadNames struct {
	dead    func(name string) bool
	release chan struct{}

	mu      sync.Mutex
	asked   map[string]int
	pending int
	peak    int
	soa     []string // names asked for their SOA
}

func newDeadNames(dead func(string) bool) *deadNames {
	return &deadNames{dead: dead, release: make(chan struct{}), asked: map[string]int{}}
}

func (d *deadNames) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	d.mu.Lock()
	d.asked[name]++
	if qtype == dns.TypeSOA {
		d.soa = append(d.soa, name)
	}
	dead := d.dead(name)
	if dead {
		d.pending++
		d.peak = max(d.peak, d.pending)
	}
	d.mu.Unlock()
	if dead {
		select {
		case <-d.release:
		case <-ctx.Done():
		}
		d.mu.Lock()
		d.pending--
		d.mu.Unlock()
		return nil, 0, &net.OpError{Op: "read", Net: "udp", Err: timeoutErr{}}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Response = true
	if qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 9)}}
	}
	return m, time.Millisecond, nil
}

func (d *deadNames) count(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[name]
}

// Dead names do not hold the live ones up: with a rate limit and no worker
// count, every live name is answered while the dead ones are still waiting
// for their answers, all of them in flight at once. (The old fixed pool of
// eight workers would sit on the first eight dead names.)
func TestDeadNamesDoNotStallTheRound(t *testing.T) {
	domains := names(400)
	store := testStore(t, domains)
	deadSet := setOf(domains[:100]) // dead first
	isDead := func(name string) bool { return deadSet[name] }
	q := newDeadNames(isDead)
	s := New(q, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store, Options{
		Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, QPS: 5000, Retries: -1,
	})
	var deadN int
	for _, d := range domains {
		if isDead(d) {
			deadN++
		}
	}
	w := store.NewWriter(storage.WriterOptions{})
	defer w.Close()
	done := make(chan Stats, 1)
	go func() {
		st, err := s.Round(context.Background(), domains, w)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	deadline := time.After(30 * time.Second)
	for {
		live := 0
		for _, d := range domains {
			if !isDead(d) && q.count(d) > 0 {
				live++
			}
		}
		if live == len(domains)-deadN {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("only %d of %d live names asked while %d dead ones hang", live, len(domains)-deadN, deadN)
		case <-time.After(5 * time.Millisecond):
		}
	}
	q.mu.Lock()
	peak := q.peak
	q.mu.Unlock()
	close(q.release)
	st := <-done
	h := s.Health()["127.0.0.1:1"]
	if peak != deadN || st.Probes != len(domains) || h.Skipped != 0 || !h.Healthy {
		t.Fatalf("peak of %d dead names in flight (want all %d), %d probes, health %+v", peak, deadN, st.Probes, h)
	}
}

// A list whose dead names come first, many more of them in a row than it
// takes to suspect a vantage: the canary is answered, so the vantage never
// rests and no domain is skipped, in whatever order the dead names come.
func TestDeadFirstNeverRestsAnAnsweringVantage(t *testing.T) {
	domains := names(6 * unhealthyAfter)
	for _, order := range []string{"dead first", "dead last", "alternating"} {
		t.Run(order, func(t *testing.T) {
			var dead map[string]bool
			switch order {
			case "dead first":
				dead = setOf(domains[:5*unhealthyAfter])
			case "dead last":
				dead = setOf(domains[unhealthyAfter:])
			default:
				dead = map[string]bool{}
				for i, d := range domains {
					if i%6 != 0 {
						dead[d] = true
					}
				}
			}
			q := newDeadNames(func(n string) bool { return dead[n] })
			close(q.release) // dead names time out at once
			store := testStore(t, domains)
			s := New(q, crawler.Crawler{QTypes: []uint16{dns.TypeA, dns.TypeAAAA}}, store, Options{
				Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, Workers: 2, Canary: "canary.test",
			})
			w := store.NewWriter(storage.WriterOptions{})
			st, err := s.Round(context.Background(), domains, w)
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			h := s.Health()["127.0.0.1:1"]
			if !h.Healthy || h.Skipped != 0 || st.Probes != len(domains) {
				t.Fatalf("health %+v after %d probes of %d", h, st.Probes, len(domains))
			}
			// Suspected after each run of unhealthyAfter dead probes, cleared
			// by the configured canary each time.
			if order == "dead first" && (h.Canaries == 0 || len(q.soa) != int(h.Canaries) || q.soa[0] != "canary.test") {
				t.Fatalf("%d canaries counted, SOA queries %v", h.Canaries, q.soa)
			}
			if order == "alternating" && h.Canaries != 0 {
				t.Fatalf("%d canaries with an answer every sixth probe", h.Canaries)
			}
		})
	}
}

func setOf(names []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// silentAfter answers the first n queries, then nothing at all.
type silentAfter struct {
	n     atomic.Int64
	asked atomic.Int64
}

func (q *silentAfter) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if q.asked.Add(1) > q.n.Load() {
		return nil, 0, &net.OpError{Op: "read", Net: "udp", Err: timeoutErr{}}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Response = true
	return m, time.Millisecond, nil
}

// A query that timed out is asked again while the vantage answers other
// queries (a lost packet), and not once it answers nothing at all.
func TestRetryOnlyWhileTheVantageAnswers(t *testing.T) {
	lq := newLimitedQuerier(&lossy{}, Options{Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, Retries: 2}, DefaultWindow, &tally{})
	// Every other query is lost; the answers in between keep it alive.
	var got int
	for i := range 10 {
		if _, _, err := lq.Query(context.Background(), "127.0.0.1:1", fmt.Sprintf("n%d.test", i), dns.TypeA); err == nil {
			got++
		}
	}
	if got != 10 {
		t.Fatalf("%d of 10 answered through a vantage that loses one query in two; want every one after a retry", got)
	}
	// A vantage gone silent: one attempt, no retry.
	q := &silentAfter{}
	lq = newLimitedQuerier(q, Options{Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, Retries: 2}, DefaultWindow, &tally{})
	if _, _, err := lq.Query(context.Background(), "127.0.0.1:1", "a.test", dns.TypeA); err == nil || q.asked.Load() != 1 {
		t.Fatalf("silent vantage: err %v after %d attempts; want a timeout after 1", err, q.asked.Load())
	}
}

// lossy answers every other query it is sent, the first among them,
// whatever the name, and loses the rest.
type lossy struct{ n atomic.Int64 }

func (l *lossy) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if l.n.Add(1)%2 == 0 {
		return nil, 0, &net.OpError{Op: "read", Net: "udp", Err: timeoutErr{}}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Response = true
	return m, time.Millisecond, nil
}

// A domain no vantage answers is measured less and less often once it is
// dark, up to the cap, and back on its TTL's cadence at its first answer.
func TestDarkDomainsBackOffAndReturn(t *testing.T) {
	const name = "gone.test"
	store := testStore(t, []string{name})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var dead atomic.Bool
	dead.Store(true)
	q := newDeadNames(func(string) bool { return dead.Load() })
	close(q.release)
	s := New(q, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store, Options{
		Vantages:    []Vantage{{Addr: "127.0.0.1:1"}, {Addr: "127.0.0.1:2"}},
		MinInterval: time.Minute, MaxInterval: time.Hour, DarkMaxInterval: 10 * time.Hour,
		Now: func() time.Time { return now },
	})
	round := func() (time.Duration, int) {
		t.Helper()
		w := store.NewWriter(storage.WriterOptions{})
		if _, err := s.Round(context.Background(), []string{name}, w); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		d, _, _ := store.Domain(name)
		return d.NextDue.Sub(now), d.Dark
	}
	want := []time.Duration{time.Hour, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	for i, w := range want {
		wait, dark := round()
		if wait != w || dark != i+1 {
			t.Fatalf("measurement %d without an answer: next in %v with dark count %d; want %v and %d", i+1, wait, dark, w, i+1)
		}
		now = now.Add(wait)
	}
	// It answers again (TTL 60 s): back to the TTL's cadence at once.
	dead.Store(false)
	if wait, dark := round(); wait != 61*time.Second || dark != 0 {
		t.Fatalf("after an answer: next in %v, dark %d; want 1m1s and 0", wait, dark)
	}
	// NXDOMAIN is an answer about the name: not an answer for it. A
	// domain that only ever gets NXDOMAIN goes dark too.
	nx := rcodeQuerier{dns.RcodeNameError}
	s2 := New(nx, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store, Options{
		Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, MaxInterval: time.Hour, Now: func() time.Time { return now },
	})
	for range storage.DarkAfter {
		w := store.NewWriter(storage.WriterOptions{})
		if _, err := s2.Round(context.Background(), []string{name}, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if d, _, _ := store.Domain(name); d.Dark != storage.DarkAfter || !d.NextDue.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("after %d NXDOMAIN rounds: dark %d, due %v", storage.DarkAfter, d.Dark, d.NextDue.Sub(now))
	}
}

// The window of a vantage without a rate limit follows the queue the
// vantage adds: it grows while the lower quartile of the round trips stays
// near the fastest, and shrinks when every answer comes late, whatever a
// few slow names do.
func TestWindowFollowsTheQueue(t *testing.T) {
	w := newWindow(128)
	feed := func(rtt func(i int) time.Duration, n int) {
		for i := range n {
			w.answered(rtt(i))
		}
	}
	start := w.size()
	// Fast answers, one in five very slow: grows to the ceiling.
	feed(func(i int) time.Duration {
		if i%5 == 0 {
			return 800 * time.Millisecond
		}
		return 100 * time.Microsecond
	}, 5000)
	if w.size() != 128 || start >= 128 {
		t.Fatalf("window %d (from %d) after fast answers; want the ceiling", w.size(), start)
	}
	// Every answer 5 ms late: a queue; it shrinks to the floor.
	feed(func(int) time.Duration { return 5 * time.Millisecond }, 5000)
	if w.size() != minWindow {
		t.Fatalf("window %d after queued answers; want %d", w.size(), minWindow)
	}
}
