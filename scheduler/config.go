package scheduler

import (
	"log/slog"
	"time"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// ConfigVantages returns the vantage resolvers c configures (crawler.Resolvers:
// the built-in public ones when none is) with their rate limits.
func ConfigVantages(c *config.Config) ([]Vantage, error) {
	addrs, err := crawler.Resolvers(c)
	if err != nil {
		return nil, err
	}
	qps := map[string]float64{}
	for r, q := range c.VantageQPS {
		v, err := obs.ParseVantage(r)
		if err != nil {
			return nil, err
		}
		qps[v] = q
	}
	var out []Vantage
	for _, a := range addrs {
		out = append(out, Vantage{Addr: a, QPS: qps[a]})
	}
	return out, nil
}

// FromConfig builds the crawler and scheduler that c describes. The
// returned function releases the query engine's sockets.
func FromConfig(c *config.Config, store *storage.Store, now func() time.Time, log *slog.Logger, observer Observer) (*Scheduler, []Vantage, func(), error) {
	vantages, err := ConfigVantages(c)
	if err != nil {
		return nil, nil, nil, err
	}
	q, cr, release, err := crawler.FromConfig(c)
	if err != nil {
		return nil, nil, nil, err
	}
	s := New(q, cr, store, Options{
		Vantages:        vantages,
		QPS:             c.QPS,
		Burst:           c.Burst,
		GlobalQPS:       c.GlobalQPS,
		Workers:         c.Workers,
		MaxInFlight:     c.MaxInFlight,
		Retries:         crawler.ConfigRetries(c.Retries),
		Canary:          c.Canary,
		MinInterval:     c.MinInterval,
		MaxInterval:     c.MaxInterval,
		DarkMaxInterval: c.DarkMaxInterval,
		Now:             now,
		Logger:          log,
		Observer:        observer,
	})
	if e, ok := q.(*crawler.Engine); ok && log != nil { // eval and tests pass no logger
		closeEngine := release
		release = func() {
			st := e.Stats()
			log.Debug("query engine", "sent", st.Sent, "received", st.Received, "send_calls", st.SendCalls,
				"receive_calls", st.ReceiveCalls, "retried", st.Retried, "tcp", st.TCP,
				"unmatched", st.Unmatched, "mismatched", st.Mismatched, "malformed", st.Malformed)
			closeEngine()
		}
	}
	return s, vantages, release, nil
}
