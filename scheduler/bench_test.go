package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/storage"
)

// timedQuerier answers at once, except through degraded vantages, where it
// loses a share of the queries (the caller waits for its timeout) and
// delays the rest. It records when each vantage was asked.
type timedQuerier struct {
	timeout  time.Duration
	degraded map[string]bool
	mu       sync.Mutex
	times    map[string][]time.Time
}

func (q *timedQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	q.mu.Lock()
	q.times[vantage] = append(q.times[vantage], time.Now())
	q.mu.Unlock()
	if q.degraded[vantage] {
		if rand.Float64() < 0.3 {
			time.Sleep(q.timeout)
			return nil, 0, &timeoutErr{}
		}
		time.Sleep(500 * time.Millisecond)
	}
	m := new(dns.Msg)
	m.SetQuestion(name+".", qtype)
	m.Response = true
	return m, time.Millisecond, nil
}

type benchResult struct {
	rate      float64 // queries/s over all healthy vantages
	overshoot int     // worst count above the limit in any 1-second window of one vantage
}

// runLimited runs one round of n domains through v vantages limited to r
// queries/s each and measures what the vantages received.
func runLimited(b *testing.B, v, n int, r float64, degraded int) benchResult {
	store, err := storage.Open(b.TempDir() + "/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	domains := make([]string, n)
	for i := range domains {
		domains[i] = fmt.Sprintf("d%06d.bench.test", i)
	}
	store.AddDomains(domains, "", time.Now())
	q := &timedQuerier{timeout: time.Second, degraded: map[string]bool{}, times: map[string][]time.Time{}}
	var vs []Vantage
	for i := range v {
		addr := fmt.Sprintf("127.0.0.%d:53", i+1)
		vs = append(vs, Vantage{Addr: addr})
		if i < degraded {
			q.degraded[addr] = true
		}
	}
	s := New(q, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store, Options{Vantages: vs, QPS: r, Workers: 64})
	w := store.NewWriter(storage.WriterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(float64(n)/r*float64(time.Second))*12/10)
	defer cancel()
	start := time.Now()
	if _, err := s.Round(ctx, domains, w); err != nil {
		b.Fatal(err)
	}
	w.Close()
	healthy := 0
	var last time.Time // the healthy vantages' last query
	var res benchResult
	for addr, ts := range q.times {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		for i, j := 0, 0; i < len(ts); i++ {
			for ts[i].Sub(ts[j]) >= time.Second {
				j++
			}
			res.overshoot = max(res.overshoot, i-j+1-int(r))
		}
		if !q.degraded[addr] && len(ts) > 0 {
			healthy += len(ts)
			if ts[len(ts)-1].After(last) {
				last = ts[len(ts)-1]
			}
		}
	}
	// Over the healthy vantages' own working time: a degraded vantage may
	// keep the round open after they finished.
	res.rate = float64(healthy) / last.Sub(start).Seconds()
	return res
}

// BenchmarkRateLimitFidelity: 32 vantages limited to R queries/s each.
// Fidelity is the achieved rate over 32·R; the overshoot is the worst
// number of queries above R that any vantage received in any 1-second
// window (the bucket's burst allows up to R/10).
func BenchmarkRateLimitFidelity(b *testing.B) {
	const v, r = 32, 100.0
	for b.Loop() {
		res := runLimited(b, v, 300, r, 0)
		b.ReportMetric(res.rate/(v*r), "fidelity")
		b.ReportMetric(float64(res.overshoot), "max-overshoot/s")
		b.ReportMetric(r/10, "burst")
	}
}

// BenchmarkDegradedVantage: the same with one vantage losing 30% of its
// queries and answering the rest 500 ms late; reported is the throughput of
// the 31 others relative to a healthy run.
func BenchmarkDegradedVantage(b *testing.B) {
	const v, r = 32, 100.0
	for b.Loop() {
		healthy := runLimited(b, v, 300, r, 0)
		degraded := runLimited(b, v, 300, r, 1)
		b.ReportMetric(degraded.rate/(healthy.rate*(v-1)/v), "relative-throughput")
	}
}

// stuck holds every query until released.
type stuck struct {
	started atomic.Int64
	release chan struct{}
}

func (s *stuck) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	s.started.Add(1)
	<-s.release
	return nil, 0, &timeoutErr{}
}

// BenchmarkMemoryInFlight: what one probe in flight holds (its worker's
// goroutine and stack, the probe, its query's call) with DefaultMaxInFlight
// of them waiting on a vantage that never answers. Reported per probe, as
// heap and stack in use beyond what was in use before the round.
func BenchmarkMemoryInFlight(b *testing.B) {
	const n = DefaultMaxInFlight
	domains := make([]string, n)
	for i := range domains {
		domains[i] = fmt.Sprintf("d%06d.bench.test", i)
	}
	for b.Loop() {
		store, err := storage.Open(b.TempDir() + "/m.db")
		if err != nil {
			b.Fatal(err)
		}
		store.AddDomains(domains, "", time.Now())
		q := &stuck{release: make(chan struct{})}
		s := New(q, crawler.Crawler{QTypes: []uint16{dns.TypeA}}, store, Options{
			Vantages: []Vantage{{Addr: "127.0.0.1:53"}}, QPS: 1e9, Burst: n, Retries: -1,
		})
		w := store.NewWriter(storage.WriterOptions{})
		var before, during runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		done := make(chan struct{})
		go func() {
			s.Round(context.Background(), domains, w)
			close(done)
		}()
		for q.started.Load() < n {
			time.Sleep(time.Millisecond)
		}
		runtime.GC()
		runtime.ReadMemStats(&during)
		close(q.release)
		<-done
		w.Close()
		store.Close()
		used := float64(during.HeapInuse+during.StackInuse) - float64(before.HeapInuse+before.StackInuse)
		b.ReportMetric(used/n, "bytes/probe-in-flight")
	}
}
