package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
)

// limitedQuerier holds every query to its vantage's token bucket and to the
// global one. Each vantage has its own limiter, created up front for the
// configured vantages, so a slow vantage never takes another's tokens.
type limitedQuerier struct {
	q        crawler.Querier
	vantages map[string]*rate.Limiter // nil limiter: unlimited
	global   *rate.Limiter            // nil: no global limit
	tally    *tally
	observer Observer // nil: none
}

// Observer is told about every query that leaves, for metrics. Its methods
// are called from many goroutines at once.
type Observer interface {
	// Query reports a completed query to server (a vantage, or a parent
	// zone's server): how long it waited for rate-limit tokens, its
	// round-trip time and its outcome.
	Query(server string, qtype uint16, outcome obs.ErrClass, wait, rtt time.Duration)
	// InFlight moves the count of queries to server awaiting an answer.
	InFlight(server string, delta int)
}

// tally counts the queries that really went out and what came back. It
// sits where queries leave, so a name server lookup or a referral shared by
// many probes of a round counts once.
type tally struct {
	sent     atomic.Int64
	answered atomic.Int64 // responses received, whatever their rcode
	failed   [obs.NumErrClasses]atomic.Int64
}

// outcome classifies what a query came back with.
func outcome(r *dns.Msg, err error) obs.ErrClass {
	if err == nil {
		return crawler.RcodeClass(r.Rcode)
	}
	return crawler.Classify(err)
}

// record counts one query: every worker of every vantage calls it, so it
// takes no lock.
func (t *tally) record(class obs.ErrClass, err error) {
	t.sent.Add(1)
	if err == nil {
		t.answered.Add(1)
	}
	if class != obs.OK {
		t.failed[class].Add(1)
	}
}

// since returns the counts added after before was taken.
func (t *tally) since(before Stats) Stats {
	now := t.snapshot()
	now.QueriesSent -= before.QueriesSent
	now.Answered -= before.Answered
	for c, n := range before.Failed {
		if now.Failed[c] -= n; now.Failed[c] == 0 {
			delete(now.Failed, c)
		}
	}
	return now
}

func (t *tally) snapshot() Stats {
	st := Stats{QueriesSent: int(t.sent.Load()), Answered: int(t.answered.Load())}
	for c := range t.failed {
		if n := t.failed[c].Load(); n > 0 {
			if st.Failed == nil {
				st.Failed = map[obs.ErrClass]int{}
			}
			st.Failed[obs.ErrClass(c)] = int(n)
		}
	}
	return st
}

var _ crawler.Querier = (*limitedQuerier)(nil)

// newLimitedQuerier makes a bucket per vantage, of its own rate or qps
// (0 or less: unlimited), and the global one.
func newLimitedQuerier(q crawler.Querier, vantages []Vantage, qps float64, burst int, globalQPS float64, t *tally, o Observer) *limitedQuerier {
	lq := &limitedQuerier{q: q, vantages: make(map[string]*rate.Limiter, len(vantages)), global: newLimiter(globalQPS, burst), tally: t, observer: o}
	for _, v := range vantages {
		vq := v.QPS
		if vq == 0 {
			vq = qps
		}
		lq.vantages[v.Addr] = newLimiter(vq, burst)
	}
	return lq
}

// LimitQuerier holds every query through q to its vantage's token bucket
// (the vantage's own rate, else qps; 0 or less lifts it) and to a global
// bucket (globalQPS; 0: none), exactly as a Scheduler's crawls are held:
// for measuring outside a Scheduler, as remote agents do. Queries to a
// vantage not in vantages fail.
func LimitQuerier(q crawler.Querier, vantages []Vantage, qps float64, burst int, globalQPS float64) crawler.Querier {
	return newLimitedQuerier(q, vantages, qps, burst, globalQPS, &tally{}, nil)
}

// LimitDirect holds queries to parent zone servers to one shared bucket of
// qps, as a Scheduler does.
func LimitDirect(q crawler.Querier, qps float64, burst int) crawler.Querier {
	return &directQuerier{q: q, lim: newLimiter(qps, burst), tally: &tally{}}
}

func newLimiter(qps float64, burst int) *rate.Limiter {
	if qps <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(qps/10)) // a tenth of a second's worth
	}
	return rate.NewLimiter(rate.Limit(qps), burst)
}

func (l *limitedQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	lim, ok := l.vantages[vantage]
	if !ok {
		return nil, 0, fmt.Errorf("vantage %s is not configured", vantage)
	}
	var start time.Time
	if l.observer != nil {
		start = time.Now()
	}
	if lim != nil {
		if err := lim.Wait(ctx); err != nil {
			return nil, 0, err
		}
	}
	if l.global != nil {
		if err := l.global.Wait(ctx); err != nil {
			return nil, 0, err
		}
	}
	return query(ctx, l.q, l.tally, l.observer, start, vantage, name, qtype)
}

// query sends one query through q, counting it in t and telling o (if not
// nil) how it went; start is when it began waiting for tokens.
func query(ctx context.Context, q crawler.Querier, t *tally, o Observer, start time.Time, server, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if o == nil {
		r, rtt, err := q.Query(ctx, server, name, qtype)
		t.record(outcome(r, err), err)
		return r, rtt, err
	}
	wait := time.Since(start)
	o.InFlight(server, 1)
	r, rtt, err := q.Query(ctx, server, name, qtype)
	o.InFlight(server, -1)
	class := outcome(r, err)
	t.record(class, err)
	o.Query(server, qtype, class, wait, rtt)
	return r, rtt, err
}

// directQuerier holds queries to parent zone servers to one shared token
// bucket: they are few servers, asked once per zone and round.
type directQuerier struct {
	q        crawler.Querier
	lim      *rate.Limiter // nil: unlimited
	tally    *tally
	observer Observer
}

func (d *directQuerier) Query(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	var start time.Time
	if d.observer != nil {
		start = time.Now()
	}
	if d.lim != nil {
		if err := d.lim.Wait(ctx); err != nil {
			return nil, 0, err
		}
	}
	return query(ctx, d.q, d.tally, d.observer, start, server, name, qtype)
}
