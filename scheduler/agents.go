package scheduler

import (
	"context"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
)

// Vantages measures through vantages outside a Scheduler, as remote agents
// do, under the same rules as a Scheduler's crawls: a token bucket per
// vantage and a global one, retries only while the vantage answers others,
// and the same health (a canary decides, a dead vantage rests and its
// domains are skipped). It is safe for concurrent use.
type Vantages struct{ lq *limitedQuerier }

// NewVantages returns the vantages of opts (with its QPS, Burst, GlobalQPS,
// Retries, Canary, Now and Logger) measuring through q.
func NewVantages(q crawler.Querier, opts Options) *Vantages {
	return &Vantages{lq: newLimitedQuerier(q, opts, DefaultWindow, &tally{})}
}

// Querier is the rate-limited query path; a crawler given to Probe must
// query through it.
func (vs *Vantages) Querier() crawler.Querier { return vs.lq }

// Probe measures domain through vantage with c, unless the vantage rests:
// ok is then false, nothing was asked, and the domain stays due.
func (vs *Vantages) Probe(ctx context.Context, c *crawler.Crawler, domain, vantage string, round *crawler.Round) (p obs.Probe, ok bool) {
	v, known := vs.lq.vantages[vantage]
	if !known {
		return c.Probe(ctx, domain, vantage, round), true // fails: not configured
	}
	return vs.lq.probe(ctx, v, func() obs.Probe { return c.Probe(ctx, domain, vantage, round) })
}

// Health returns each vantage's health so far.
func (vs *Vantages) Health() map[string]HealthStats {
	out := make(map[string]HealthStats, len(vs.lq.vantages))
	for addr, v := range vs.lq.vantages {
		out[addr] = v.health.stats()
	}
	return out
}
