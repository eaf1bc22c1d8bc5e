package simnet

import (
	"context"
	"math"
	"time"
)

// clock is the world's accelerated clock: simulated time advances speed
// times faster than real time, starting at start when the clock is made.
// It is safe for concurrent use (it is never modified after creation).
type clock struct {
	start     time.Time // simulated time at creation
	speed     float64   // simulated seconds per real second
	realStart time.Time // real time at creation (carries the monotonic reading)
	realNow   func() time.Time
}

func newClock(start time.Time, speed float64, realNow func() time.Time) *clock {
	return &clock{start: start, speed: speed, realStart: realNow(), realNow: realNow}
}

// Now returns the current simulated time.
func (c *clock) Now() time.Time {
	elapsed := c.realNow().Sub(c.realStart)
	return c.start.Add(time.Duration(float64(elapsed) * c.speed))
}

// real converts a simulated duration to the real duration it takes to pass.
func (c *clock) real(d time.Duration) time.Duration {
	r := float64(d) / c.speed
	if r >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(r)
}

// Sleep blocks until d of simulated time has passed or ctx is done, in
// which case it returns ctx.Err().
func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(c.real(d))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
