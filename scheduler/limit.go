package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/fluxwatch/fluxwatch/crawler"
)

// limitedQuerier holds every query to its vantage's token bucket and to the
// global one. Each vantage has its own limiter, created up front for the
// configured vantages, so a slow vantage never takes another's tokens.
type limitedQuerier struct {
	q        crawler.Querier
	vantages map[string]*rate.Limiter // nil limiter: unlimited
	global   *rate.Limiter            // nil: no global limit
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
	return l.q.Query(ctx, vantage, name, qtype)
}

// directQuerier holds queries to parent zone servers to one shared token
// bucket: they are few servers, asked once per zone and round.
type directQuerier struct {
	q   crawler.Querier
	lim *rate.Limiter // nil: unlimited
}

func (d *directQuerier) Query(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if d.lim != nil {
		if err := d.lim.Wait(ctx); err != nil {
			return nil, 0, err
		}
	}
	return d.q.Query(ctx, server, name, qtype)
}
