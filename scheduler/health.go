package scheduler

import (
	"sync"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// Health thresholds: after unhealthyAfter probes in a row that failed at
// the vantage (timeouts, network errors, REFUSED), the vantage rests for
// firstBackoff, doubling up to maxBackoff while each re-probe fails.
const (
	unhealthyAfter = 20
	firstBackoff   = 30 * time.Second
	maxBackoff     = 10 * time.Minute
)

// health tracks one vantage. While it rests, its workers skip domains
// instead of measuring them (they stay due for the next round), so a dead
// vantage costs neither time nor false evidence; when the rest is over one
// probe goes out, and its outcome decides.
type health struct {
	mu          sync.Mutex
	consecutive int
	until       time.Time // resting until; zero: healthy
	backoff     time.Duration
	reprobing   bool

	probes, failures, skipped int64
}

// HealthStats describe a vantage's state; the crawl summary lists them.
type HealthStats struct {
	Probes   int64 `json:"probes"`
	Failures int64 `json:"failures"`
	Skipped  int64 `json:"skipped"`
	Healthy  bool  `json:"healthy"`
}

// allow reports whether a probe may go out now; the clock is read only
// while the vantage rests.
func (h *health) allow(now func() time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.until.IsZero():
		return true
	case h.reprobing || now().Before(h.until):
		h.skipped++
		return false
	default:
		h.reprobing = true
		return true
	}
}

// record takes the outcome of a probe that went out.
func (h *health) record(p obs.Probe, clock func() time.Time) {
	failed := vantageFailed(p)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probes++
	if !failed {
		h.consecutive, h.until, h.backoff, h.reprobing = 0, time.Time{}, 0, false
		return
	}
	h.failures++
	h.consecutive++
	switch {
	case h.reprobing:
		h.reprobing = false
		h.backoff = min(2*h.backoff, maxBackoff)
		h.until = clock().Add(h.backoff)
	case h.until.IsZero() && h.consecutive >= unhealthyAfter:
		h.backoff = firstBackoff
		h.until = clock().Add(h.backoff)
	}
}

func (h *health) stats() HealthStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HealthStats{Probes: h.probes, Failures: h.failures, Skipped: h.skipped, Healthy: h.until.IsZero()}
}

// vantageFailed reports whether every query of a probe failed in a way
// that blames the vantage rather than the domain: SERVFAIL and NXDOMAIN
// are about the domain, and a list of dead domains must not bench a
// healthy resolver.
func vantageFailed(p obs.Probe) bool {
	if len(p.Observations) == 0 {
		return false
	}
	for _, o := range p.Observations {
		switch o.Err {
		case obs.Timeout, obs.Network, obs.Refused:
		default:
			return false
		}
	}
	return true
}
