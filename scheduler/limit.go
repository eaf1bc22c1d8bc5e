package scheduler

import (
	"context"
	"fmt"
	"maps"
	"sync"
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
}

// tally counts the queries that really went out and what came back. It
// sits where queries leave, so a name server lookup or a referral shared by
// many probes of a round counts once.
type tally struct {
	mu       sync.Mutex
	sent     int
	answered int // responses received, whatever their rcode
	failed   map[obs.ErrClass]int
}

func (t *tally) record(r *dns.Msg, err error) {
	class := crawler.Classify(err)
	if err == nil {
		class = crawler.RcodeClass(r.Rcode)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	if err == nil {
		t.answered++
	}
	if class != obs.OK {
		if t.failed == nil {
			t.failed = map[obs.ErrClass]int{}
		}
		t.failed[class]++
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
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{QueriesSent: t.sent, Answered: t.answered, Failed: maps.Clone(t.failed)}
}

var _ crawler.Querier = (*limitedQuerier)(nil)

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
	r, rtt, err := l.q.Query(ctx, vantage, name, qtype)
	l.tally.record(r, err)
	return r, rtt, err
}

// directQuerier holds queries to parent zone servers to one shared token
// bucket: they are few servers, asked once per zone and round.
type directQuerier struct {
	q     crawler.Querier
	lim   *rate.Limiter // nil: unlimited
	tally *tally
}

func (d *directQuerier) Query(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if d.lim != nil {
		if err := d.lim.Wait(ctx); err != nil {
			return nil, 0, err
		}
	}
	r, rtt, err := d.q.Query(ctx, server, name, qtype)
	d.tally.record(r, err)
	return r, rtt, err
}
