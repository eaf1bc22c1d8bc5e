package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
)

// queryCounts count the queries that left an agent and how they ended.
type queryCounts struct {
	sent, answered atomic.Int64
	mu             sync.Mutex
	failed         map[obs.ErrClass]int64
}

func (c *queryCounts) record(r *dns.Msg, err error) {
	c.sent.Add(1)
	class := obs.OK
	if err == nil {
		c.answered.Add(1)
		class = crawler.RcodeClass(r.Rcode)
	} else {
		class = crawler.Classify(err)
	}
	if class == obs.OK {
		return
	}
	c.mu.Lock()
	if c.failed == nil {
		c.failed = map[obs.ErrClass]int64{}
	}
	c.failed[class]++
	c.mu.Unlock()
}

func (c *queryCounts) errors() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.failed))
	for k, v := range c.failed {
		out[k.String()] = v
	}
	return out
}

// limited holds every query to its vantage's token bucket, and to the
// global one, as the local scheduler does. The vantages are fixed when
// the agent starts, so the limiters are made up front and never evicted.
type limited struct {
	q        crawler.Querier
	vantages map[string]*rate.Limiter // nil limiter: unlimited
	global   *rate.Limiter            // nil: none
	counts   *queryCounts
}

var _ crawler.Querier = (*limited)(nil)

func newLimited(q crawler.Querier, vs []scheduler.Vantage, qps float64, burst int, globalQPS float64, counts *queryCounts) *limited {
	l := &limited{q: q, vantages: make(map[string]*rate.Limiter, len(vs)), global: newLimiter(globalQPS, burst), counts: counts}
	for _, v := range vs {
		vq := v.QPS
		if vq == 0 {
			vq = qps
		}
		l.vantages[v.Addr] = newLimiter(vq, burst)
	}
	return l
}

// newLimiter returns a token bucket of qps (nil when qps ≤ 0: no limit),
// with burst tokens or a tenth of a second's worth.
func newLimiter(qps float64, burst int) *rate.Limiter {
	if qps <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(qps/10))
	}
	return rate.NewLimiter(rate.Limit(qps), burst)
}

func (l *limited) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	lim, ok := l.vantages[vantage]
	if !ok {
		return nil, 0, fmt.Errorf("vantage %s is not configured", vantage)
	}
	for _, b := range []*rate.Limiter{lim, l.global} {
		if b != nil {
			if err := b.Wait(ctx); err != nil {
				return nil, 0, err
			}
		}
	}
	r, rtt, err := l.q.Query(ctx, vantage, name, qtype)
	l.counts.record(r, err)
	return r, rtt, err
}

// direct holds queries to parent zone servers to one shared bucket.
type direct struct {
	q      crawler.Querier
	lim    *rate.Limiter
	counts *queryCounts
}

func (d *direct) Query(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if d.lim != nil {
		if err := d.lim.Wait(ctx); err != nil {
			return nil, 0, err
		}
	}
	r, rtt, err := d.q.Query(ctx, server, name, qtype)
	d.counts.record(r, err)
	return r, rtt, err
}
