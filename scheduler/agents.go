package scheduler

import (
	"context"
	"log/slog"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
)

// Vantages measures through vantages outside a Scheduler, as remote agents
// do, under the same rules as a Scheduler's crawls: a token bucket per
// vantage and a global one, retries only while the vantage answers others,
// and the same health (a canary decides, a dead vantage rests and its
// domains are skipped). It is safe for concurrent use.
type Vantages struct {
	lq     *limitedQuerier
	canary string
	now    func() time.Time
	log    *slog.Logger
}

// NewVantages returns the vantages of opts (with its QPS, Burst, GlobalQPS,
// Retries, Canary, Now and Logger) measuring through q.
func NewVantages(q crawler.Querier, opts Options) *Vantages {
	vs := &Vantages{
		lq:     newLimitedQuerier(q, opts.Vantages, opts.QPS, opts.Burst, opts.GlobalQPS, opts.Retries, DefaultWindow, &tally{}, nil),
		canary: opts.Canary, now: opts.Now, log: opts.Logger,
	}
	if vs.canary == "" {
		vs.canary = DefaultCanary
	}
	if vs.now == nil {
		vs.now = time.Now
	}
	if vs.log == nil {
		vs.log = slog.Default()
	}
	return vs
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
	return probeHealthy(ctx, vs.lq, v, vs.canary, vs.now, vs.log, func() obs.Probe {
		return c.Probe(ctx, domain, vantage, round)
	})
}

// Health returns each vantage's health so far.
func (vs *Vantages) Health() map[string]HealthStats {
	out := make(map[string]HealthStats, len(vs.lq.vantages))
	for addr, v := range vs.lq.vantages {
		out[addr] = v.health.stats()
	}
	return out
}

// probeHealthy runs probe through v unless v rests, asking the canary when
// v's rest is over or the probe left it suspect.
func probeHealthy(ctx context.Context, q crawler.Querier, v *vantage, canary string, now func() time.Time, log *slog.Logger,
	probe func() obs.Probe) (obs.Probe, bool) {
	ok, ask := v.health.allow(now)
	if ask {
		askCanary(ctx, q, v, canary, now, log)
		ok, _ = v.health.allow(now)
	}
	if !ok {
		return obs.Probe{}, false
	}
	heard := v.responses.Load()
	p := probe()
	if v.health.record(p, v.responses.Load() != heard) {
		askCanary(ctx, q, v, canary, now, log)
	}
	return p, true
}

// askCanary asks v for the canary's SOA through q and tells v's health what
// came back: any response but REFUSED means the vantage is up.
func askCanary(ctx context.Context, q crawler.Querier, v *vantage, canary string, now func() time.Time, log *slog.Logger) {
	resp, _, err := q.Query(ctx, v.addr, canary, dns.TypeSOA)
	answered := err == nil && resp.Rcode != dns.RcodeRefused
	if !answered {
		log.Warn("vantage does not answer; resting it", "vantage", v.addr, "canary", canary, "err", err)
	} else {
		log.Debug("vantage answers its canary", "vantage", v.addr)
	}
	v.health.canary(answered, now())
}
