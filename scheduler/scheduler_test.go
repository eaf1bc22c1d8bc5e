package scheduler

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// fakeQuerier answers every query with one address, except through the
// vantages in block, which hang until release is closed.
type fakeQuerier struct {
	block   map[string]bool
	release chan struct{}
	mu      sync.Mutex
	asked   map[string]int
	times   map[string][]time.Time
}

var _ crawler.Querier = (*fakeQuerier)(nil)

func (f *fakeQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if f.block[vantage] {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		return nil, 0, &net.OpError{Op: "read", Err: timeoutErr{}}
	}
	f.mu.Lock()
	f.asked[vantage]++
	f.times[vantage] = append(f.times[vantage], time.Now())
	f.mu.Unlock()
	m := new(dns.Msg)
	m.SetQuestion(name+".", qtype)
	m.Response, m.RecursionAvailable = true, true
	if qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name + ".", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 90}, A: net.IPv4(192, 0, 2, 1)}}
	}
	return m, time.Millisecond, nil
}

func (f *fakeQuerier) count(v string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[v]
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func newFake(block ...string) *fakeQuerier {
	f := &fakeQuerier{block: map[string]bool{}, release: make(chan struct{}), asked: map[string]int{}, times: map[string][]time.Time{}}
	for _, b := range block {
		f.block[b] = true
	}
	return f
}

func testStore(t *testing.T, domains []string) *storage.Store {
	t.Helper()
	s, err := storage.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.AddDomains(domains, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	return s
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "d" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".test"
	}
	return out
}

func TestDeadVantageDoesNotStallOthers(t *testing.T) {
	// Many more domains than it takes to rest the vantage: its other
	// worker goes on while the canary is out, and must not get through
	// every domain before the canary's answer rests it.
	domains := names(400)
	store := testStore(t, domains)
	f := newFake("127.0.0.1:2")
	s := New(f, crawler.Crawler{}, store, Options{
		Vantages: []Vantage{{Addr: "127.0.0.1:1"}, {Addr: "127.0.0.1:2"}},
		Workers:  2,
	})
	w := store.NewWriter(storage.WriterOptions{})
	done := make(chan Stats)
	go func() {
		st, err := s.Round(context.Background(), domains, w)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	// The healthy vantage must get through every domain while the dead one
	// holds all of its workers.
	deadline := time.After(20 * time.Second)
	for f.count("127.0.0.1:1") < len(domains)*len(crawler.DefaultQTypes) {
		select {
		case <-done:
			t.Fatal("round finished while a vantage was still blocked")
		case <-deadline:
			t.Fatalf("healthy vantage stalled after %d queries", f.count("127.0.0.1:1"))
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(f.release)
	st := <-done
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The dead vantage was benched after unhealthyAfter failed probes and
	// a failed canary (its other worker went on while the canary was
	// out); the rest of its domains were skipped, not recorded as
	// failures.
	dead := s.Health()["127.0.0.1:2"]
	if st.Failed[obs.Timeout] == 0 || dead.Healthy || dead.Skipped == 0 || dead.Failures < unhealthyAfter || dead.Canaries != 1 ||
		st.Probes != len(domains)+int(dead.Probes) || !s.Health()["127.0.0.1:1"].Healthy {
		t.Fatalf("stats %+v, dead vantage %+v", st, dead)
	}
}

func TestVantageRateLimit(t *testing.T) {
	domains := names(30)
	store := testStore(t, domains)
	f := newFake()
	const qps = 100
	s := New(f, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store, Options{
		Vantages: []Vantage{{Addr: "127.0.0.1:1", QPS: qps}, {Addr: "127.0.0.1:2"}},
		QPS:      0, // the second vantage is unlimited
		Burst:    1,
		Workers:  8,
	})
	w := store.NewWriter(storage.WriterOptions{})
	if _, err := s.Round(context.Background(), domains, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// A token bucket of one token at 100/s cannot let 30 queries through
	// in less than 29 intervals of 10ms.
	ts := f.times["127.0.0.1:1"]
	if len(ts) != 30 {
		t.Fatalf("%d queries", len(ts))
	}
	if span := ts[len(ts)-1].Sub(ts[0]); span < 29*time.Second/qps*9/10 {
		t.Fatalf("30 queries at %d qps took only %v", qps, span)
	}
}

func TestNextDueFollowsTTL(t *testing.T) {
	store := testStore(t, []string{"a.test"})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(newFake(), crawler.Crawler{}, store, Options{
		Vantages:    []Vantage{{Addr: "127.0.0.1:1"}},
		MinInterval: 30 * time.Second, MaxInterval: time.Hour,
		Now: func() time.Time { return now },
	})
	w := store.NewWriter(storage.WriterOptions{})
	if _, err := s.Round(context.Background(), []string{"a.test"}, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	d, _, _ := store.Domain("a.test")
	if want := now.Add(91 * time.Second); !d.NextDue.Equal(want) {
		t.Fatalf("next due %v; want %v (TTL 90s + 1s)", d.NextDue, want)
	}
	// A TTL of 0 is due again as soon as the minimum allows.
	if NextInterval(5, 30*time.Second, time.Hour) != 30*time.Second || NextInterval(86400, 30*time.Second, time.Hour) != time.Hour ||
		NextInterval(0, 30*time.Second, time.Hour) != 30*time.Second {
		t.Fatal("interval not clamped")
	}
}

func TestNextDueWithoutAddress(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	round := func(vantages ...string) time.Time {
		t.Helper()
		store := testStore(t, []string{"a.test"})
		f := newFake("127.0.0.1:2") // times out at once
		close(f.release)
		var vs []Vantage
		for _, v := range vantages {
			vs = append(vs, Vantage{Addr: v})
		}
		s := New(f, crawler.Crawler{}, store, Options{Vantages: vs, MinInterval: 30 * time.Second, MaxInterval: time.Hour,
			Now: func() time.Time { return now }})
		w := store.NewWriter(storage.WriterOptions{})
		if _, err := s.Round(context.Background(), []string{"a.test"}, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		d, _, _ := store.Domain("a.test")
		return d.NextDue
	}
	// No vantage had an address: the longest wait.
	if got, want := round("127.0.0.1:2"), now.Add(time.Hour); !got.Equal(want) {
		t.Errorf("next due without an answer %v; want %v", got, want)
	}
	// One vantage failing does not hide the other's TTL, whatever the order.
	for range 5 {
		if got, want := round("127.0.0.1:2", "127.0.0.1:1"), now.Add(91*time.Second); !got.Equal(want) {
			t.Fatalf("next due %v; want %v (TTL 90s + 1s from the vantage that answered)", got, want)
		}
	}
}

func TestCancelFinishesInFlightProbes(t *testing.T) {
	domains := names(50)
	store := testStore(t, domains)
	f := newFake()
	s := New(f, crawler.Crawler{}, store, Options{Vantages: []Vantage{{Addr: "127.0.0.1:1", QPS: 200}}, Burst: 1, Workers: 2})
	w := store.NewWriter(storage.WriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	st, err := s.Round(ctx, domains, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	probes, _ := w.Committed()
	if st.Probes == len(domains) || int64(st.Probes) != probes {
		t.Fatalf("cancelled round measured %d probes, committed %d", st.Probes, probes)
	}
	complete := true
	for _, d := range domains {
		store.History(d, time.Time{}, time.Time{}, func(p obs.Probe) error {
			if len(p.Observations) != len(crawler.DefaultQTypes) {
				complete = false
			}
			return nil
		})
	}
	if !complete {
		t.Fatal("a probe was cut short by the cancel")
	}
}

// flakyQuerier fails (REFUSED-like network error) until healed.
type flakyQuerier struct {
	mu     sync.Mutex
	healed bool
	asked  int
}

func (f *flakyQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if !f.healed {
		return nil, 0, &net.OpError{Op: "read", Err: timeoutErr{}}
	}
	return emptyResponse(name, qtype, dns.RcodeSuccess), time.Millisecond, nil
}

// emptyResponse is a response to name and qtype with rcode and no records.
func emptyResponse(name string, qtype uint16, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name+".", qtype)
	m.Response, m.Rcode = true, rcode
	return m
}

func TestUnhealthyVantageIsReprobedWithBackoff(t *testing.T) {
	domains := names(30)
	store := testStore(t, domains)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &flakyQuerier{}
	s := New(f, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store, Options{
		Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, Workers: 1, Now: func() time.Time { return now },
	})
	round := func() {
		w := store.NewWriter(storage.WriterOptions{})
		if _, err := s.Round(context.Background(), domains, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	// unhealthyAfter probes fail, the canary fails: the vantage rests and
	// the rest of the round is skipped.
	round()
	if h := s.Health()["127.0.0.1:1"]; h.Healthy || h.Probes != unhealthyAfter || h.Skipped != 30-unhealthyAfter || h.Canaries != 1 ||
		f.asked != unhealthyAfter+1 {
		t.Fatalf("after a dead round: %+v, asked %d", h, f.asked)
	}
	// Still resting: nothing is asked.
	asked := f.asked
	round()
	if f.asked != asked {
		t.Fatalf("a resting vantage was asked %d times", f.asked-asked)
	}
	// The rest is over but the vantage still fails: the canary alone is
	// asked (no retry: the vantage answers nothing), and the rest doubles.
	now = now.Add(firstBackoff)
	round()
	if f.asked != asked+1 {
		t.Fatalf("after the rest asked %d times; want the canary only", f.asked-asked)
	}
	now = now.Add(firstBackoff) // not enough: the rest doubled
	round()
	if f.asked != asked+1 {
		t.Fatal("asked before the doubled rest was over")
	}
	// Healed: the next canary is answered and every domain is measured.
	f.healed = true
	now = now.Add(firstBackoff)
	round()
	if h := s.Health()["127.0.0.1:1"]; !h.Healthy || h.Canaries != 3 || f.asked != asked+1+1+30 {
		t.Fatalf("after healing: %+v, asked %d", h, f.asked-asked)
	}
}

// countingObserver counts what the scheduler reports.
type countingObserver struct {
	mu       sync.Mutex
	queries  map[obs.ErrClass]int
	inFlight map[string]int
	peak     int
}

func (c *countingObserver) Query(_ string, _ uint16, class obs.ErrClass, _, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries[class]++
}

func (c *countingObserver) InFlight(v string, d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight[v] += d
	c.peak = max(c.peak, c.inFlight[v])
}

// The observer hears of every query the round's statistics count, with
// the same outcomes, and in-flight counts return to zero.
func TestObserverSeesEveryQuery(t *testing.T) {
	domains := names(30)
	store := testStore(t, domains)
	o := &countingObserver{queries: map[obs.ErrClass]int{}, inFlight: map[string]int{}}
	s := New(newFake(), crawler.Crawler{}, store, Options{
		Vantages: []Vantage{{Addr: "127.0.0.1:1"}, {Addr: "127.0.0.1:2"}}, Workers: 4, Observer: o,
	})
	w := store.NewWriter(storage.WriterOptions{})
	st, err := s.Round(context.Background(), domains, w)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range o.queries {
		total += n
	}
	if total != st.QueriesSent || o.queries[obs.OK] != st.Answered || o.inFlight["127.0.0.1:1"] != 0 || o.peak == 0 {
		t.Fatalf("observer saw %v (in flight %v, peak %d); the round sent %d, answered %d", o.queries, o.inFlight, o.peak, st.QueriesSent, st.Answered)
	}
}

// gateQuerier holds every query until released, counting them.
type gateQuerier struct {
	started atomic.Int64
	release chan struct{}
}

func (q *gateQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	q.started.Add(1)
	<-q.release
	return nil, 0, &net.OpError{Op: "read", Err: timeoutErr{}}
}

// Cancelling a round lets the probes in flight finish and starts no more,
// even those already queued for the workers.
func TestCancelStartsNoQueuedProbes(t *testing.T) {
	domains := names(200)
	store := testStore(t, domains)
	q := &gateQuerier{release: make(chan struct{})}
	s := New(q, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store, Options{Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, Workers: 8})
	w := store.NewWriter(storage.WriterOptions{})
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Stats)
	go func() {
		st, _ := s.Round(ctx, domains, w)
		done <- st
	}()
	for q.started.Load() < 8 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(q.release)
	if st := <-done; st.Probes != 8 || q.started.Load() != 8 {
		t.Fatalf("%d probes stored, %d queries started after a cancel with 8 in flight; want 8 and 8", st.Probes, q.started.Load())
	}
}

// rcodeQuerier answers every query with one rcode.
type rcodeQuerier struct{ rcode int }

func (q rcodeQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	return emptyResponse(name, qtype, q.rcode), time.Millisecond, nil
}

// SERVFAIL and NXDOMAIN are about the domain: a list of broken domains
// never rests a resolver that answers, while REFUSED does.
func TestBrokenDomainsDoNotRestAVantage(t *testing.T) {
	domains := names(3 * unhealthyAfter)
	for _, c := range []struct {
		rcode  int
		rested bool
	}{{dns.RcodeServerFailure, false}, {dns.RcodeNameError, false}, {dns.RcodeRefused, true}} {
		store := testStore(t, domains)
		s := New(rcodeQuerier{c.rcode}, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store,
			Options{Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, Workers: 1})
		w := store.NewWriter(storage.WriterOptions{})
		if _, err := s.Round(context.Background(), domains, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		h := s.Health()["127.0.0.1:1"]
		if rested := !h.Healthy || h.Skipped > 0; rested != c.rested {
			t.Errorf("%s to every query: healthy %v, %d skipped; want rested %v", dns.RcodeToString[c.rcode], h.Healthy, h.Skipped, c.rested)
		}
	}
}

// concurrencyQuerier answers after a short wait and records the most
// queries it had at once.
type concurrencyQuerier struct {
	now, most atomic.Int64
	asked     sync.Map // name -> *atomic.Int64
	// window, if set, is the vantage's count of queries outstanding or
	// reserved; mostWindow the most it was seen at.
	window     *atomic.Int64
	mostWindow atomic.Int64
}

// raise sets most to n if n is larger.
func raise(most *atomic.Int64, n int64) {
	for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
	}
}

func (q *concurrencyQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	raise(&q.most, q.now.Add(1))
	if q.window != nil {
		raise(&q.mostWindow, q.window.Load())
	}
	c, _ := q.asked.LoadOrStore(name, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
	time.Sleep(time.Millisecond)
	q.now.Add(-1)
	return emptyResponse(name, qtype, dns.RcodeSuccess), time.Millisecond, nil
}

// A worker whose probe ends starts the next domain itself: the probes in
// flight must still keep to the cap, the queries outstanding or reserved
// for probes about to start to the same (one type a probe), and every
// domain be measured once.
func TestProbesInFlightKeepToTheCap(t *testing.T) {
	domains := names(400)
	for _, limit := range []int{1, 8, 32} {
		store := testStore(t, domains)
		q := &concurrencyQuerier{}
		s := New(q, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store,
			Options{Vantages: []Vantage{{Addr: "127.0.0.1:1"}}, Workers: limit})
		q.window = &s.vantages[0].outstanding
		w := store.NewWriter(storage.WriterOptions{})
		st, err := s.Round(context.Background(), domains, w)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if most := q.most.Load(); most > int64(limit) || (limit > 1 && most < 2) {
			t.Errorf("cap %d: %d queries at once; want between 2 and the cap", limit, most)
		}
		if most := q.mostWindow.Load(); most > int64(limit) {
			t.Errorf("cap %d: %d queries outstanding or reserved; want at most the cap", limit, most)
		}
		if st.Probes != len(domains) {
			t.Errorf("cap %d: %d probes for %d domains", limit, st.Probes, len(domains))
		}
		for _, d := range domains {
			if c, ok := q.asked.Load(d); !ok || c.(*atomic.Int64).Load() != 1 {
				t.Errorf("cap %d: %s not asked exactly once", limit, d)
				break
			}
		}
	}
}
