package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/metrics"
)

// The crawl job measures the due domains through the vantages (the
// scheduler its state built counts its probes into the metrics), or,
// with daemon.nats set, hands them to the remote agents.

// startCoordinator starts the coordinator of remote vantages when
// daemon.nats configures one: the crawl job then hands the due domains to
// the agents, and their observations come back through the coordinator.
func (d *Daemon) startCoordinator(ctx context.Context, cfg *config.Config) error {
	if cfg.Daemon.NATS.URL == "" {
		return nil
	}
	cc := cluster.CoordinatorConfigOf(cfg)
	cc.Now, cc.Logger = d.now, d.log
	coord, err := cluster.NewCoordinator(d.db, cc)
	if err != nil {
		return fmt.Errorf("daemon.nats: %w", err)
	}
	if err := coord.Start(ctx); err != nil {
		return fmt.Errorf("daemon.nats: %w", err)
	}
	d.coord = coord
	d.status.agents = coord.Agents
	d.metrics.CoordinatorFrom(func() metrics.IngestCounts {
		s := coord.Stats()
		return metrics.IngestCounts{Received: s.Received, Stored: s.Stored, Redelivered: s.Redelivered,
			Terminated: s.Rejected, Retried: s.Retried, Batches: s.Batches}
	})
	return nil
}

// crawl is one run of the crawl job.
func (d *Daemon) crawl(ctx context.Context, st *state) error {
	if d.coord != nil {
		ds, err := d.coord.Dispatch(ctx)
		d.log.Info("job crawl: dispatched to agents", "domains", ds.Domains, "items", ds.Published, "failed", ds.Failed)
		return err
	}
	due, err := d.store.Due(d.now())
	if err != nil || len(due) == 0 {
		return err
	}
	rs, err := st.sched.Round(ctx, due, d.writer)
	d.log.Info("job crawl", "domains", len(due), "probes", rs.Probes, "queries", rs.QueriesSent,
		"answered", rs.Answered, "elapsed", rs.Elapsed.Round(time.Millisecond))
	return err
}
