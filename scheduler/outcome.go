package scheduler

import (
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Outcome is what the probes of one domain said, merged over the vantages
// of a round (or, with agents, of a dispatch): whether any was measured,
// whether any vantage answered for the name, and the smallest address TTL
// any gave. The zero value is "not measured". It is the one place a
// measurement becomes a next-due time and a dark count, for the local
// scheduler and the coordinator of agents alike.
type Outcome struct {
	measured, answered, address bool
	ttl                         uint32 // the smallest address TTL, when address
}

// Add merges one probe in.
func (o *Outcome) Add(p obs.Probe) {
	o.measured = true
	if t, ok := AddressTTL(p); ok {
		if !o.address || t < o.ttl {
			o.ttl = t
		}
		o.address, o.answered = true, true
		return
	}
	o.answered = o.answered || Answered(p)
}

// Measured reports whether any probe was merged in; Answered whether any
// vantage answered for the name (its dark count is then cleared).
func (o Outcome) Measured() bool { return o.measured }
func (o Outcome) Answered() bool { return o.answered }

// Intervals are the waits an Outcome turns into: MinInterval..MaxInterval
// for a domain that answers, up to DarkMaxInterval for a dark one.
type Intervals struct{ Min, Max, DarkMax time.Duration }

// Next is the domain's next measurement after now. dark is its dark count
// after this measurement when no vantage answered (ignored otherwise): a
// Round adds one to what was stored, the coordinator only on a dispatch's
// first batch.
func (o Outcome) Next(domain string, dark int, now time.Time, iv Intervals) storage.Measured {
	m := storage.Measured{Domain: domain}
	switch {
	case o.address:
		m.At = now.Add(NextInterval(o.ttl, iv.Min, iv.Max))
	case o.answered:
		m.At = now.Add(iv.Max)
	default:
		m.Dark = dark
		m.At = now.Add(DarkInterval(dark, iv.Max, iv.DarkMax))
	}
	return m
}
