package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/internal/export"
	"github.com/fluxwatch/fluxwatch/storage"
)

// A daemon that is one shard of a cluster of coordinators (daemon.nats
// with shards, or a cluster resharded since it started) publishes its
// own list to NATS at each publish (cluster.PutShardList), and the feed
// publisher (daemon.nats.feed_publisher; shard 0 by default) writes its
// exports from the shards' lists merged (cluster.MergeLists): one block
// list for consumers, with one RPZ serial, the publisher's. The publisher
// also publishes again whenever another shard put a new list, so that no
// shard's entries in the feed are older than its last publish.

// sharded reports whether the daemon is a shard of a sharded cluster now.
func (d *Daemon) sharded(cfg *config.Config) bool {
	if d.coord == nil {
		return false
	}
	m := d.coord.Map()
	return cfg.Daemon.NATS.IsSharded() || m.Shards > 1 || m.Moving()
}

// feedSource returns what the exports are written from: the store, or
// for the feed publisher of a sharded cluster the shards' merged lists.
// With share, a shard first puts its own list in NATS. An error means
// nothing may be written: a publisher that cannot read the other shards'
// lists keeps the files it published last rather than drop their
// entries.
func (d *Daemon) feedSource(ctx context.Context, cfg *config.Config, share bool) (export.Source, error) {
	if !d.sharded(cfg) {
		return export.StoreSource(d.db), nil
	}
	js := d.coord.JetStream()
	if js == nil {
		return nil, fmt.Errorf("shard %d: %w", d.coord.Shard(), cluster.ErrNotReady)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	now, k, m := d.now(), d.coord.Shard(), d.coord.Map()
	prefix := cluster.CoordinatorConfigOf(cfg).Prefix
	own, err := cluster.ReadShardList(d.db, k, max(m.Shards, k+1), now)
	if err != nil {
		return nil, err
	}
	if share {
		if err := cluster.PutShardList(ctx, js, prefix, own); err != nil {
			return nil, fmt.Errorf("shard %d: putting its list in NATS: %w", k, err)
		}
		d.coord.Published(now, len(own.Entries))
	}
	if !cfg.Daemon.NATS.Publishes() {
		return export.StoreSource(d.db), nil
	}
	lists, err := cluster.LoadShardLists(ctx, js, prefix)
	if err != nil {
		return nil, fmt.Errorf("reading the shards' lists: %w", err)
	}
	mine := false
	for i := range lists {
		if lists[i].Shard == k {
			lists[i], mine = own, true // the store is fresher than what NATS holds
		}
	}
	if !mine {
		lists = append(lists, own)
	}
	return cluster.MergeLists(lists, now).Each, nil
}

// shardFeed runs beside a coordinator. Once it is connected, a shard of
// a sharded cluster publishes the list as stored, as an unsharded daemon
// does when it starts: its list reaches NATS and, at the publisher, the
// exports hold every shard's. Then, until ctx ends, it publishes the
// shard's list again when domains moved to or from it (their listings
// move with them), and the feed publisher publishes the merged feed again
// each time another shard put its list; changes that come while it
// publishes are taken together by the next publish.
func (d *Daemon) shardFeed(ctx context.Context) {
	if err := d.coord.WaitReady(ctx); err != nil {
		return
	}
	cfg := d.state().cfg
	if d.sharded(cfg) {
		if err := d.publish(ctx, cfg, storage.PublishStart); err != nil {
			d.log.Error("publishing the stored list once connected failed; serving the files of the last run", "err", err)
		}
	}
	changed := make(chan struct{}, 1)
	if cfg.Daemon.NATS.Publishes() {
		d.feedDone.Go(func() { d.watchLists(ctx, changed) })
	}
	for {
		moved := false
		select {
		case <-changed:
		case <-d.moved:
			moved = true
		case <-ctx.Done():
			return
		}
		sleep(ctx, time.Second) // let what comes together be taken together
		var err error
		if moved {
			// The listings of the domains moved: publish this shard's
			// list (and, at the publisher, the merged feed).
			err = d.publish(ctx, d.state().cfg, storage.PublishMoved)
		} else {
			err = d.republish(ctx)
		}
		if err != nil && ctx.Err() == nil {
			d.log.Error("feed: publishing failed; serving the last list", "err", err)
		}
	}
}

// watchLists signals changed each time another shard put its list.
func (d *Daemon) watchLists(ctx context.Context, changed chan<- struct{}) {
	for ctx.Err() == nil {
		cfg := d.state().cfg
		err := cluster.WatchShardLists(ctx, d.coord.JetStream(), cluster.CoordinatorConfigOf(cfg).Prefix, func(shard int) {
			if shard == d.coord.Shard() {
				return
			}
			select {
			case changed <- struct{}{}:
			default:
			}
		})
		if err != nil && ctx.Err() == nil {
			d.log.Warn("feed: watching the shards' lists", "err", err)
			sleep(ctx, 5*time.Second)
		}
	}
}

// republish writes the exports from the shards' lists again, without
// putting the shard's own list or recording a publish of it.
func (d *Daemon) republish(ctx context.Context) error {
	cfg := d.state().cfg
	if !d.sharded(cfg) || !cfg.Daemon.NATS.Publishes() {
		return nil
	}
	d.classifyMu.Lock()
	defer d.classifyMu.Unlock()
	d.listMu.Lock()
	defer d.listMu.Unlock()
	src, err := d.feedSource(ctx, cfg, false)
	if err != nil {
		return err
	}
	return errors.Join(d.writeExports(cfg, src, "feed: published the shards' merged list")...)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// clusterState is the shard map and the shards' statuses for the status,
// read from NATS with a short timeout: a status request never waits long
// for a broker that does not answer.
func (d *Daemon) clusterState(ctx context.Context) *cluster.ClusterState {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return d.coord.ClusterState(ctx)
}

// NetworkBuilder returns what builds the flux networks of a
// classification when the daemon is a shard of a sharded cluster: the
// shards' flux domains are grouped together, by shard 0, and every shard
// installs the networks it built (cluster.ShardNetworks). It returns nil
// for a daemon that is not a shard, and an error while its coordinator
// has not reached NATS: a shard's classification never builds networks
// from its own domains alone.
func (d *Daemon) NetworkBuilder() (classify.NetworkBuilder, error) {
	st := d.state()
	if !d.sharded(st.cfg) {
		return nil, nil
	}
	d.netsMu.Lock()
	defer d.netsMu.Unlock()
	if d.nets != nil {
		return d.nets, nil
	}
	js := d.coord.JetStream()
	if js == nil {
		return nil, fmt.Errorf("shard %d: flux networks are built with the other shards: %w", d.coord.Shard(), cluster.ErrNotReady)
	}
	k := d.coord.Shard()
	d.nets = &cluster.ShardNetworks{JS: js, Prefix: cluster.CoordinatorConfigOf(st.cfg).Prefix, Shard: k,
		ShardsNow: func() int { return max(d.coord.Map().Shards, k+1) }, Meta: st.classifier.Meta, Now: d.now, Logger: d.log}
	nets := d.nets
	if k == nets.Builder {
		d.feedDone.Go(func() {
			if err := nets.Watch(d.feedCtx, d.db); err != nil && d.feedCtx.Err() == nil {
				d.log.Error("networks: watching the shards' runs stopped", "err", err)
			}
		})
	} else {
		d.feedDone.Go(func() { d.installNetworks(d.feedCtx, nets) })
	}
	return d.nets, nil
}

// installNetworksEvery is how often a shard that does not build the
// networks looks for a table the builder built since it last classified.
const installNetworksEvery = 10 * time.Second

// installNetworks installs each table of networks the builder builds as
// it comes, not only when the shard next classifies: `networks` and the
// exports of every shard then show the same networks, at most a few
// seconds after the builder's run.
func (d *Daemon) installNetworks(ctx context.Context, nets *cluster.ShardNetworks) {
	for {
		select {
		case <-time.After(installNetworksEvery):
		case <-ctx.Done():
			return
		}
		d.classifyMu.Lock()
		err := nets.Prepare(ctx, d.db)
		d.classifyMu.Unlock()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("networks: installing the cluster's flux networks", "err", err)
		}
	}
}

// classifier returns the classifier of a classification: the state's,
// with the cluster's network builder when the daemon is a shard.
func (d *Daemon) classifier(st *state) (*classify.Classifier, error) {
	nb, err := d.NetworkBuilder()
	if err != nil || nb == nil {
		return st.classifier, err
	}
	c := *st.classifier
	c.Networks = nb
	return &c, nil
}
