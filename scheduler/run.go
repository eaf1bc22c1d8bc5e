package scheduler

import (
	"context"
	"time"

	"github.com/fluxwatch/fluxwatch/storage"
)

// Plan says how many rounds to run and how far apart.
type Plan struct {
	Rounds   int           // at least 1
	Interval time.Duration // from the start of one round to the start of the next
	// Domains returns what to measure in a round (called once per round).
	Domains func() ([]string, error)
	// Sleep waits on the scheduler's clock; nil means real time.
	Sleep func(ctx context.Context, d time.Duration) error
	// AfterRound, if set, is called after each round with its stats.
	AfterRound func(round int, st Stats)
}

// Run runs the plan's rounds, writing through w. It stops early, without
// error, when ctx is cancelled; what was measured until then is written.
func (s *Scheduler) Run(ctx context.Context, plan Plan, w *storage.Writer) (Stats, error) {
	var total Stats
	sleep := plan.Sleep
	if sleep == nil {
		sleep = sleepReal
	}
	for i := 0; i < max(plan.Rounds, 1); i++ {
		start := s.opts.Now()
		if ctx.Err() != nil {
			break
		}
		domains, err := plan.Domains()
		if err != nil {
			return total, err
		}
		st, err := s.Round(ctx, domains, w)
		total.add(st)
		if err != nil {
			return total, err
		}
		s.log.Debug("round done", "round", i+1, "domains", len(domains), "probes", st.Probes, "queries", st.QueriesSent, "elapsed", st.Elapsed)
		if plan.AfterRound != nil {
			plan.AfterRound(i+1, st)
		}
		if i+1 < plan.Rounds {
			if wait := plan.Interval - s.opts.Now().Sub(start); wait > 0 {
				if sleep(ctx, wait) != nil {
					break
				}
			}
		}
	}
	return total, nil
}

func sleepReal(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
