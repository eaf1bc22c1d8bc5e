package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Seeds in a sharded cluster. A shard keeps only the seeded names it owns
// (storage.Ownership); names seeded at one shard that others own (`seeds
// add` through its daemon, a file dropped in its seed directory), and
// names removed at one shard that others own (`seeds remove`), are
// published to the seeds stream, <PREFIX>_SEEDS, which every shard reads
// with a durable consumer of its own, "seeds-<k>", keeping its share. Seed
// files and seed URLs configured on every shard reach every shard anyway:
// each keeps its share of them and hands the rest on, which the others
// find known already.

func (n names) seedsStream() string  { return strings.ToUpper(n.prefix) + "_SEEDS" }
func (n names) seedsSubject() string { return n.prefix + ".seeds" }
func seedsConsumer(shard int) string { return "seeds-" + strconv.Itoa(shard) }

// seedBatch is one message of the seeds stream.
type seedBatch struct {
	Source string   `json:"source"`
	Names  []string `json:"names"`
	From   int      `json:"from"` // the shard that read them
	// Remove says the names are to be removed (`seeds remove`), not added.
	Remove bool `json:"remove,omitempty"`
}

// seedsPerMessage keeps a seeds message well under NATS's 1 MB payload.
const seedsPerMessage = 10000

// seedsMaxAge is how long the seeds stream keeps a batch: a shard down
// longer misses it.
const seedsMaxAge = 7 * 24 * time.Hour

// HandSeeds publishes names seeded here to the seeds stream, for the
// shards that own them: storage.Ownership's Elsewhere.
func (c *Coordinator) HandSeeds(names []string, source string) error {
	return c.handSeeds(seedBatch{Source: source, Names: names, From: c.cfg.Shard})
}

// HandRemovals publishes names removed here that other shards own to the
// seeds stream, for those shards to remove: storage.Ownership's
// RemoveElsewhere.
func (c *Coordinator) HandRemovals(names []string) error {
	return c.handSeeds(seedBatch{Names: names, From: c.cfg.Shard, Remove: true})
}

func (c *Coordinator) handSeeds(sb seedBatch) error {
	if !c.isReady() {
		return ErrNotReady
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for part := range slices.Chunk(sb.Names, seedsPerMessage) {
		sb.Names = part
		b, err := json.Marshal(sb)
		if err != nil {
			return err
		}
		if _, err := c.js.Publish(ctx, c.names.seedsSubject(), b); err != nil {
			return err
		}
	}
	return nil
}

// takeSeeds adds the names of the seeds stream this shard owns.
func (c *Coordinator) takeSeeds(ctx context.Context) {
	cc := jetstream.ConsumerConfig{
		Durable:       seedsConsumer(c.cfg.Shard),
		Description:   "shard " + strconv.Itoa(c.cfg.Shard) + ", keeping its seeds",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	c.consume(ctx, c.names.seedsStream(), cc, 10, func(batch []jetstream.Msg) {
		for _, m := range batch {
			var sb seedBatch
			if err := json.Unmarshal(m.Data(), &sb); err != nil {
				c.log.Error("coordinator: dropping a seeds message that does not read", "err", err)
				m.Term()
				continue
			}
			own := slices.DeleteFunc(sb.Names, func(n string) bool { return !c.owns(n) })
			if len(own) == 0 {
				m.Ack()
				continue
			}
			if sb.Remove {
				res, err := c.store.RemoveDomains(own)
				if err != nil {
					c.log.Error("coordinator: removing seeds another shard removed failed; they will be delivered again", "err", err)
					m.NakWithDelay(c.cfg.RetryDelay)
					continue
				}
				m.Ack()
				c.recount.Store(true)
				if res.Removed > 0 {
					c.log.Info("seeds removed at another shard", "from", sb.From, "removed", res.Removed)
				}
				continue
			}
			res, err := c.store.AddDomains(own, sb.Source, c.cfg.Now())
			if err != nil {
				c.log.Error("coordinator: adding seeds from another shard failed; they will be delivered again", "err", err)
				m.NakWithDelay(c.cfg.RetryDelay)
				continue
			}
			m.Ack()
			c.recount.Store(true)
			if res.Added > 0 {
				c.log.Info("seeds from another shard", "from", sb.From, "source", sb.Source, "added", res.Added, "known", res.Known)
			}
		}
	})
}
