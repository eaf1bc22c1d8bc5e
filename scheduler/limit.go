package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
)

// limitedQuerier holds every query to its vantage's token bucket and to the
// global one. Each vantage has its own limiter, created up front for the
// configured vantages, so a slow vantage never takes another's tokens. It
// also retries a query that timed out, but only while its vantage answers
// other queries: a lost answer from a live resolver is worth asking again,
// silence from a dead one is not.
type limitedQuerier struct {
	q        crawler.Querier
	vantages map[string]*vantage
	global   *rate.Limiter // nil: no global limit
	retries  int
	tally    *tally
	observer Observer // nil: none
	// What judging a vantage's health needs (see health.go).
	canary string
	now    func() time.Time
	log    *slog.Logger
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

// newLimitedQuerier makes a bucket per vantage of opts, of its own rate or
// opts.QPS (0 or less: unlimited), and the global one; it takes Retries,
// Canary, Now, Logger and Observer from opts too. window is the most
// queries in flight through a vantage without a rate.
func newLimitedQuerier(q crawler.Querier, opts Options, window int, t *tally) *limitedQuerier {
	retries := cmp.Or(opts.Retries, 1)
	lq := &limitedQuerier{q: q, vantages: make(map[string]*vantage, len(opts.Vantages)),
		global: newLimiter(opts.GlobalQPS, opts.Burst), retries: max(retries, 0), tally: t, observer: opts.Observer,
		canary: cmp.Or(opts.Canary, DefaultCanary), now: opts.Now, log: opts.Logger}
	if lq.now == nil {
		lq.now = time.Now
	}
	if lq.log == nil {
		lq.log = slog.Default()
	}
	for _, v := range opts.Vantages {
		vq := v.QPS
		if vq == 0 {
			vq = opts.QPS
		}
		lq.vantages[v.Addr] = newVantage(v.Addr, newLimiter(vq, opts.Burst), lq.global, window)
	}
	return lq
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

func (l *limitedQuerier) Query(ctx context.Context, addr, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	v, ok := l.vantages[addr]
	if !ok {
		return nil, 0, fmt.Errorf("vantage %s is not configured", addr)
	}
	for attempt := 0; ; attempt++ {
		r, rtt, heard, err := l.once(ctx, v, name, qtype)
		if err == nil && r.Rcode == dns.RcodeRefused {
			return r, rtt, nil // a response, but no sign the vantage serves us
		}
		if err == nil {
			v.responses.Add(1)
			v.answering.Store(true)
			if v.win != nil {
				v.win.answered(rtt)
			}
			return r, rtt, nil
		}
		if ctx.Err() != nil || !crawler.Retryable(err) {
			return nil, 0, err
		}
		// Lost, or the name is dead: asked again only if the vantage
		// answered anyone while this query waited, or answered the last
		// query before it failed.
		alive := v.responses.Load() != heard
		if !alive {
			alive = v.answering.Swap(false)
		}
		if attempt >= l.retries || !alive {
			return nil, 0, err
		}
	}
}

// once waits for the vantage's and the global tokens, then sends one
// query; heard is the vantage's response count when it left.
func (l *limitedQuerier) once(ctx context.Context, v *vantage, name string, qtype uint16) (r *dns.Msg, rtt time.Duration, heard uint64, err error) {
	var start time.Time
	if l.observer != nil {
		start = time.Now()
	}
	if v.paced {
		v.waiting.Add(1)
		err = waitTokens(ctx, v.lim, l.global)
		v.waiting.Add(-1)
		signal(v.wake)
		if err != nil {
			return nil, 0, 0, err
		}
	}
	heard = v.responses.Load()
	if !v.paced {
		v.outstanding.Add(1)
	}
	r, rtt, err = query(ctx, l.q, l.tally, l.observer, start, v.addr, name, qtype)
	if !v.paced {
		v.outstanding.Add(-1) // the dispatcher looks again when the probe ends
	}
	return r, rtt, heard, err
}

func waitTokens(ctx context.Context, lims ...*rate.Limiter) error {
	for _, lim := range lims {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				return err
			}
		}
	}
	return nil
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
	if err := waitTokens(ctx, d.lim); err != nil {
		return nil, 0, err
	}
	return query(ctx, d.q, d.tally, d.observer, start, server, name, qtype)
}
