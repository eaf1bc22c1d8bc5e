package scheduler

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// How many probes a vantage has in flight follows from its rate and the
// latency it sees (Little's law), not from a worker count: a probe starts
// whenever the vantage's token bucket has fewer than a burst's worth of
// queries waiting, so the bucket never runs dry while any domain is left,
// whatever share of the queries time out or come back late. At 1,000
// queries/s with 4 s for a dead name (a timeout and a retry), that is
// about 4,000 probes in flight; DefaultMaxInFlight bounds them (and the
// memory they hold) per vantage.
//
// A vantage without a rate limit (one's own resolver) has no bucket to
// pace by: it gets a window of queries in flight instead (a probe's
// queries go out together, so probes would be the wrong unit), sized by the delay
// the vantage adds, as TCP Vegas sizes its window. Over each window's worth
// of answers the lower quartile of their round trips is compared with the
// fastest round trip ever seen: the difference is the time queries spend
// queued at the vantage (or in a socket buffer). Below the target queue (a
// millisecond, or half the fastest round trip if that is longer) the window
// grows by an eighth; above it, it shrinks by an eighth, between minWindow
// and DefaultWindow. A few slow names do not move it (the quartile ignores
// them), and loss is never used: a dead name loses every query.
const (
	// DefaultMaxInFlight is the most probes one vantage has in flight.
	// Each holds a goroutine and its probe: about 4.6 KB with a querier
	// that holds every query (BenchmarkMemoryInFlight), 19 MB at the cap;
	// the engine adds its call and buffer per query.
	DefaultMaxInFlight = 4096
	// DefaultWindow is the most queries in flight through a vantage
	// without a rate limit. More overruns the receive buffer of a server
	// that reads one socket (knotd's 208 KiB hold about 200 queries).
	DefaultWindow = 128
	minWindow     = 16
	// minWaiting is the fewest queries allowed to wait for a vantage's
	// tokens before no further probe starts; the bucket's burst, if
	// larger, is used instead.
	minWaiting = 4
)

// vantage is what the scheduler keeps of one resolver across rounds: its
// token bucket, its health and what paces the starting of probes.
type vantage struct {
	addr   string
	lim    *rate.Limiter // nil: no limit of its own
	health *health
	// paced is true when a token bucket (its own or the global one) sets
	// the pace; otherwise win does.
	paced      bool
	maxWaiting int64
	win        *window // nil when paced

	responses atomic.Uint64 // responses to any query, REFUSED aside
	// answering is true from a response until a query fails with no
	// response from the vantage while it waited (false before the first).
	answering atomic.Bool
	waiting   atomic.Int64 // paced: queries waiting for a token
	// outstanding counts, without a rate limit, the queries awaiting
	// their answers: what the window bounds.
	outstanding atomic.Int64
	wake        chan struct{} // cap 1: a query got its token, or its answer
}

func newVantage(addr string, lim, global *rate.Limiter, windowSize int) *vantage {
	v := &vantage{addr: addr, lim: lim, health: &health{}, wake: make(chan struct{}, 1)}
	v.paced = lim != nil || global != nil
	if v.paced {
		burst := 0
		if lim != nil {
			burst = lim.Burst()
		}
		if global != nil {
			burst = max(burst, global.Burst())
		}
		v.maxWaiting = int64(max(burst, minWaiting))
	} else {
		v.win = newWindow(windowSize)
	}
	return v
}

// signal wakes whoever waits for room on v, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// window is the number of queries in flight allowed through a vantage
// without a rate limit (see the package's pacing notes). It is safe for
// concurrent use.
type window struct {
	ceil, floor int64
	cur         atomic.Int64
	answers     atomic.Int64   // in this epoch: a window's worth of answers
	rtts        []atomic.Int64 // this epoch's round trips, ns (the first ceil)

	mu     sync.Mutex
	base   time.Duration // the fastest round trip ever seen; 0: none yet
	sorted []int64       // scratch for the quartile
}

func newWindow(ceil int) *window {
	w := &window{ceil: int64(ceil), floor: int64(min(minWindow, ceil)), rtts: make([]atomic.Int64, ceil)}
	w.cur.Store(max(w.ceil/2, w.floor))
	return w
}

func (w *window) size() int64 { return w.cur.Load() }

// queueTarget is the queueing delay the window aims at.
const queueTarget = time.Millisecond

// answered counts an answer that took rtt; the last of an epoch resizes
// the window.
func (w *window) answered(rtt time.Duration) {
	n := w.answers.Add(1)
	if n <= int64(len(w.rtts)) {
		w.rtts[n-1].Store(int64(rtt))
	}
	if n < w.cur.Load() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.cur.Load()
	if w.answers.Load() < cur { // another answer ended this epoch
		return
	}
	w.sorted = w.sorted[:0]
	for i := range min(cur, int64(len(w.rtts))) {
		if v := w.rtts[i].Load(); v > 0 {
			w.sorted = append(w.sorted, v)
		}
	}
	w.answers.Store(0)
	if len(w.sorted) == 0 {
		return // no round trips measured
	}
	slices.Sort(w.sorted)
	if fastest := time.Duration(w.sorted[0]); w.base == 0 || fastest < w.base {
		w.base = fastest
	}
	quartile := time.Duration(w.sorted[len(w.sorted)/4])
	step := max(cur/8, 1)
	if quartile-w.base <= max(queueTarget, w.base/2) {
		w.cur.Store(min(cur+step, w.ceil))
	} else {
		w.cur.Store(max(cur-step, w.floor))
	}
}
