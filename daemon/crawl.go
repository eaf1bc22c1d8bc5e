package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/metrics"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The crawl job measures the due domains through the vantages (the
// scheduler its state built counts its probes into the metrics), or,
// with daemon.nats set, hands them to the remote agents.

// newCoordinator makes the coordinator of remote vantages when
// daemon.nats configures one: the crawl job then hands the due domains to
// the agents, and their observations come back through the coordinator.
// It is made before the configuration's seeds are read, since the shard
// of a sharded cluster keeps only the names it owns (storage.Ownership):
// of the seed files and seed URLs, which every shard reads, it keeps its
// own and hands nothing on; the names of `seeds add` and of the seed
// directory, read here only, it hands to their shards. It starts with
// startCoordinator.
func (d *Daemon) newCoordinator(cfg *config.Config) error {
	if cfg.Daemon.NATS.URL == "" {
		return nil
	}
	cc := cluster.CoordinatorConfigOf(cfg)
	cc.Now, cc.Logger = d.now, d.log
	cc.Hold = func() func() {
		d.classifyMu.Lock()
		d.listMu.Lock()
		return func() {
			d.listMu.Unlock()
			d.classifyMu.Unlock()
		}
	}
	cc.OnMoved = func() {
		select {
		case d.moved <- struct{}{}:
		default:
		}
	}
	coord, err := cluster.NewCoordinator(d.db, cc)
	if err != nil {
		return fmt.Errorf("daemon.nats: %w", err)
	}
	d.coord = coord
	d.db.SetOwnership(&storage.Ownership{Owns: coord.Owns, Elsewhere: coord.HandSeeds, RemoveElsewhere: coord.HandRemovals})
	return nil
}

// startCoordinator starts the coordinator newCoordinator made.
func (d *Daemon) startCoordinator(ctx context.Context, cfg *config.Config) error {
	coord := d.coord
	if coord == nil {
		return nil
	}
	if err := coord.Start(ctx); err != nil {
		return fmt.Errorf("daemon.nats: %w", err)
	}
	d.status.sources(nil, coord.Agents, func() *cluster.ClusterState { return d.clusterState(ctx) })
	d.metrics.CoordinatorFrom(func() metrics.IngestCounts {
		s := coord.Stats()
		return metrics.IngestCounts{Received: s.Received, Stored: s.Stored, Redelivered: s.Redelivered,
			Terminated: s.Rejected, Retried: s.Retried, Batches: s.Batches}
	})
	d.feedCtx, d.stopFeed = context.WithCancel(ctx)
	d.feedDone.Go(func() { d.shardFeed(d.feedCtx) })
	if cfg.Daemon.NATS.IsSharded() {
		d.metrics.ShardFrom(func() metrics.ShardCounts {
			st := coord.ShardStatus(ctx)
			return metrics.ShardCounts{Shard: st.Shard, Shards: st.Shards, Lag: st.Lag, MovedOut: st.MovedOut,
				MovedIn: st.MovedIn, MovePending: st.MovePending, LastPublish: st.LastPublish}
		})
	}
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
