package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// A resolver's health is judged by the resolver, never by the domains it
// is asked about: a vantage is healthy while it answers anything (an
// answer, NXDOMAIN, SERVFAIL) for any name. After unhealthyAfter probes in
// a row that got nothing from it (timeouts, network errors, REFUSED) while
// it answered nothing else either, it is
// only suspect: a canary query (Options.Canary, by default the root zone's
// SOA) decides. A failed probe counts only if the vantage answered no
// query at all while it was out, and an answer to the canary clears the
// suspicion, however many dead domains came first;
// silence or REFUSED rests it for firstBackoff, doubling up to maxBackoff.
// When a rest is over, the canary is asked again before any domain.
const (
	unhealthyAfter = 20
	firstBackoff   = 30 * time.Second
	maxBackoff     = 10 * time.Minute
)

// DefaultCanary is the name a suspect vantage is asked for (type SOA).
const DefaultCanary = "."

// health tracks one vantage. While it rests, its domains are skipped
// instead of measured (they stay due for the next round), so a dead
// vantage costs neither time nor false evidence.
type health struct {
	mu       sync.Mutex
	suspect  int       // probes in a row out while the vantage answered nothing
	checking bool      // a canary is out
	until    time.Time // resting until; zero: healthy
	backoff  time.Duration

	probes, failures, skipped, canaries int64
}

// HealthStats describe a vantage's state; the crawl summary lists them.
type HealthStats struct {
	Probes   int64 `json:"probes"`
	Failures int64 `json:"failures"`
	Skipped  int64 `json:"skipped"`
	// Canaries counts the canary queries asked to judge the vantage.
	Canaries int64 `json:"canaries"`
	Healthy  bool  `json:"healthy"`
}

// allow reports whether a probe may go out now, and whether the caller
// must first ask the canary (the rest is over) and then call allow again.
// The clock is read only while the vantage rests.
func (h *health) allow(now func() time.Time) (ok, ask bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.until.IsZero():
		return true, false
	case h.checking || now().Before(h.until):
		h.skipped++
		return false, false
	default:
		h.checking = true
		return false, true
	}
}

// record takes the outcome of a probe that went out, and reports whether
// the vantage just became suspect: the caller then asks the canary. heard
// says whether the vantage answered any query (of any probe) while this
// probe was out: then its failure was the domain's, not the vantage's.
func (h *health) record(p obs.Probe, heard bool) (ask bool) {
	failed := vantageFailed(p)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probes++
	if !failed || heard {
		h.suspect = 0
	}
	if !failed {
		return false
	}
	if heard {
		h.failures++
		return false
	}
	h.failures++
	h.suspect++
	if h.until.IsZero() && !h.checking && h.suspect >= unhealthyAfter {
		h.checking = true
		return true
	}
	return false
}

// canary takes the canary's outcome: answered clears the vantage, anything
// else rests it, for longer each time in a row.
func (h *health) canary(answered bool, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checking = false
	h.canaries++
	h.suspect = 0
	if answered {
		h.until, h.backoff = time.Time{}, 0
		return
	}
	if h.until.IsZero() {
		h.backoff = firstBackoff
	} else {
		h.backoff = min(2*h.backoff, maxBackoff)
	}
	h.until = now.Add(h.backoff)
}

func (h *health) stats() HealthStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HealthStats{Probes: h.probes, Failures: h.failures, Skipped: h.skipped, Canaries: h.canaries, Healthy: h.until.IsZero()}
}

// vantageFailed reports whether every query of a probe got nothing from
// the vantage: SERVFAIL and NXDOMAIN are answers about the domain.
// The referral from the parent zone's servers is not the vantage's.
func vantageFailed(p obs.Probe) bool {
	asked := false
	for _, o := range p.Observations {
		if o.Flags&obs.FlagDelegation != 0 {
			continue
		}
		switch o.Err {
		case obs.Timeout, obs.Network, obs.Refused:
			asked = true
		default:
			return false
		}
	}
	return asked
}

// admit reports whether a probe may go out through v now; when v's rest
// is over it asks the canary first.
func (l *limitedQuerier) admit(ctx context.Context, v *vantage) bool {
	ok, ask := v.health.allow(l.now)
	if ask {
		l.askCanary(ctx, v)
		ok, _ = v.health.allow(l.now)
	}
	return ok
}

// probe runs probe through v unless v rests (ok false: the domain stays
// due), and asks the canary if the probe left v suspect.
func (l *limitedQuerier) probe(ctx context.Context, v *vantage, probe func() obs.Probe) (p obs.Probe, ok bool) {
	if !l.admit(ctx, v) {
		return obs.Probe{}, false
	}
	heard := v.responses.Load()
	p = probe()
	if v.health.record(p, v.responses.Load() != heard) {
		l.askCanary(ctx, v)
	}
	return p, true
}

// askCanary asks v for the canary's SOA and tells v's health what came
// back: any response but REFUSED means the vantage is up.
func (l *limitedQuerier) askCanary(ctx context.Context, v *vantage) {
	resp, _, err := l.Query(ctx, v.addr, l.canary, dns.TypeSOA)
	answered := err == nil && resp.Rcode != dns.RcodeRefused
	if !answered {
		l.log.Warn("vantage does not answer; resting it", "vantage", v.addr, "canary", l.canary, "err", err)
	} else {
		l.log.Debug("vantage answers its canary", "vantage", v.addr)
	}
	v.health.canary(answered, l.now())
}
