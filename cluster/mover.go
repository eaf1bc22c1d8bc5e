package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Moving domains between shards. A coordinator that holds domains another
// shard owns (after a reshard, or a database seeded before sharding)
// hands them over, a batch at a time:
//
//  1. the batch is marked moving: no longer dispatched;
//  2. each domain's whole history (storage.History: its record, every
//     probe, its verdict, listing, delisting and listing log) is
//     published to the move stream, <PREFIX>_MOVE, on the subject
//     <prefix>.move.<owner>, a message per domain (or several, for a long
//     history: each holds the record and part of the probes);
//  3. once JetStream has acknowledged every message (the history is then
//     as safe as any observation waiting in the stream), the domains are
//     deleted from the database.
//
// The owner's consumer, "move-<k>", stores the histories it takes
// (storage.PutHistories, in one transaction a batch) and acknowledges them
// only after the commit. Storing a history twice stores it once, so a
// coordinator that dies between 2 and 3 and hands the batch over again
// duplicates nothing. Observations of a moved domain that arrive at its
// old shard (agents measuring items dispatched before the move) are
// forwarded to the owner's subject; those that reach the owner before
// the domain's history are given back and delivered again later. A
// reshard ends when every old shard has handed over all it no longer
// owns and the move stream is empty: the map then loses its From.

func (n names) moveStream() string        { return strings.ToUpper(n.prefix) + "_MOVE" }
func (n names) moveAll() string           { return n.prefix + ".move.*" }
func (n names) move(shard int) string     { return n.prefix + ".move." + strconv.Itoa(shard) }
func moveConsumer(shard int) string       { return "move-" + strconv.Itoa(shard) }
func doneKey(shard int) string            { return doneKeyPrefix + strconv.Itoa(shard) }
func statusKey(shard int) string          { return statusKeyPrefix + strconv.Itoa(shard) }
func (c *Coordinator) owns(d string) bool { return c.Map().Owner(d) == c.cfg.Shard }

// moveChunk bounds the probes' bytes in one move message, under NATS's
// default 1 MB payload.
const moveChunk = 512 << 10

// Map returns the cluster's shard map as the coordinator last read it.
func (c *Coordinator) Map() ShardMap { return *c.shards.Load() }

// Shard returns the coordinator's shard.
func (c *Coordinator) Shard() int { return c.cfg.Shard }

// JetStream returns the coordinator's JetStream context once it is ready
// (WaitReady), nil before: the daemon's sharded publish and networks use
// it.
func (c *Coordinator) JetStream() jetstream.JetStream {
	if !c.isReady() {
		return nil
	}
	return c.js
}

// Owns reports whether the coordinator's shard owns name under the map:
// what seeds a shard keeps.
func (c *Coordinator) Owns(name string) bool { return c.owns(name) }

// publishMark is the shard's last publish, for its status.
type publishMark struct {
	at     time.Time
	listed int
}

// Published records the shard's last publish, which its status reports.
func (c *Coordinator) Published(at time.Time, listed int) {
	c.published.Store(&publishMark{at, listed})
	select {
	case c.statusNow <- struct{}{}: // the status says so at once
	default:
	}
}

// setupShards opens the shards bucket, reads (or writes) the map and
// creates the move stream.
func (c *Coordinator) setupShards(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := shardsKV(ctx, c.js, c.names)
	if err != nil {
		return err
	}
	m, err := ensureMap(ctx, kv, c.cfg.Shards, c.cfg.Now())
	if err != nil {
		return err
	}
	if m.Shards != c.cfg.Shards && (c.cfg.Shards > 1 || m.Shards > 1) {
		c.log.Warn("coordinator: the cluster's shard count is not the configured one; following the cluster's",
			"cluster", m.Shards, "configured", c.cfg.Shards)
	}
	c.shards.Store(&m)
	c.kv = kv
	return nil
}

// watchShards follows the map.
func (c *Coordinator) watchShards(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := c.kv.Watch(ctx, mapKey)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			m, err := decodeMap(e.Value())
			if err != nil {
				c.log.Error("coordinator: keeping the last shard map", "err", err)
				continue
			}
			if old := c.Map(); !old.same(m) {
				c.log.Info("coordinator: shard map", "shards", m.Shards, "from", m.From, "epoch", m.Epoch)
			}
			c.shards.Store(&m)
		}
		w.Stop()
	}
}

// What elsewhere did with an observation of a domain the database does
// not know.
const (
	unknown   = iota // neither: terminate it
	forwarded        // sent on to its owner's subject, and acknowledged
	arriving         // owned here and on its way: give it back for later
)

// headerForwarded marks an observation one shard forwarded to another,
// naming the shard; headerObservation carries its observation ID.
const (
	headerForwarded   = "Fluxwatch-Forwarded"
	headerObservation = "Fluxwatch-Observation"
)

// observationIDOf returns the observation ID of an observation message:
// its Nats-Msg-Id, or for one forwarded between shards the ID it was
// first sent with.
func observationIDOf(m jetstream.Msg) string {
	if id := m.Headers().Get(headerObservation); id != "" {
		return id
	}
	return m.Headers().Get(nats.MsgIdHdr)
}

// elsewhere handles an observation of a domain the database does not
// know: forwarded to its owner when another shard owns it; given back for
// later when this shard owns it and a move is in progress (its history
// may still be on the way).
func (c *Coordinator) elsewhere(m jetstream.Msg, domain string) int {
	sm := c.Map()
	owner := sm.Owner(domain)
	if owner == c.cfg.Shard {
		// On its way here: a reshard runs, or another shard forwarded
		// it, having handed the domain over (a database seeded before
		// sharding hands its domains over with no reshard running).
		if sm.Moving() || m.Headers().Get(headerForwarded) != "" {
			return arriving
		}
		return unknown
	}
	if m.Headers().Get(headerForwarded) != "" {
		// Forwarded here by a shard whose map says this one owns it:
		// the maps disagree for a moment. Wait for them to agree.
		return arriving
	}
	agent := m.Headers().Get(headerAgent)
	if checkName("agent", agent) != nil {
		agent = "unknown"
	}
	fw := nats.NewMsg(c.names.obsShard(owner, agent))
	fw.Data = m.Data()
	fw.Header.Set(headerAgent, agent)
	fw.Header.Set(headerForwarded, strconv.Itoa(c.cfg.Shard))
	// Not the original Nats-Msg-Id: the stream has seen it (this very
	// message) and would drop the copy. Storage keeps it once anyway. The
	// observation's ID goes along, for OnStored.
	id := observationIDOf(m)
	fw.Header.Set(headerObservation, id)
	fw.Header.Set(nats.MsgIdHdr, id+"/to-"+strconv.Itoa(owner))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(ctx, fw); err != nil {
		c.log.Warn("coordinator: forwarding an observation to its shard failed; it will be delivered again", "domain", domain, "shard", owner, "err", err)
		return arriving
	}
	m.Ack()
	c.forwarded.Add(1)
	return forwarded
}

// shardLoop writes the shard's status and hands over the domains it does
// not own, every StatusInterval.
func (c *Coordinator) shardLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.StatusInterval)
	defer t.Stop()
	for {
		// A coordinator of a cluster of one has nothing to hand over and
		// no shard to report: it waits for a reshard.
		if sm := c.Map(); sm.Shards > 1 || sm.Moving() || c.cfg.Shard > 0 {
			if err := c.moveOut(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("coordinator: handing domains to their shards", "err", err)
			}
			c.finishReshard(ctx)
			if err := c.writeStatus(ctx); err != nil && ctx.Err() == nil {
				c.log.Debug("coordinator: writing the shard status", "err", err)
			}
		}
		select {
		case <-t.C:
		case <-c.statusNow:
		case <-ctx.Done():
			return
		}
	}
}

// MoveOut hands every domain the shard holds and does not own to its
// owner now, a batch at a time, and returns how many it handed over.
// shardLoop calls it every StatusInterval.
func (c *Coordinator) MoveOut(ctx context.Context) (int, error) {
	if !c.isReady() {
		return 0, ErrNotReady
	}
	before := c.movedOut.Load()
	err := c.moveOut(ctx)
	return int(c.movedOut.Load() - before), err
}

func (c *Coordinator) moveOut(ctx context.Context) error {
	sm := c.Map()
	// Reading every domain's record costs about a second a million: only
	// when the map changed, while a reshard runs, or until a scan found
	// nothing left to hand over.
	if last := c.scanned.Load(); last != nil && last.same(sm) && !sm.Moving() {
		return nil
	}
	var away []string
	err := c.store.Domains(func(d storage.Domain) error {
		if sm.Owner(d.Name) != c.cfg.Shard {
			away = append(away, d.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.movePending.Store(int64(len(away)))
	moved := len(away) > 0
	for len(away) > 0 && ctx.Err() == nil {
		n := min(len(away), c.cfg.MoveBatch)
		if err := c.moveBatch(ctx, sm, away[:n]); err != nil {
			return err
		}
		away = away[n:]
		c.movePending.Store(int64(len(away)))
	}
	if moved && c.cfg.OnMoved != nil {
		c.cfg.OnMoved() // once, when the shard has handed over what it could
	}
	if len(away) == 0 {
		c.scanned.Store(&sm)
	}
	if len(away) == 0 && sm.Moving() && c.cfg.Shard < sm.From {
		done := strconv.FormatInt(sm.Epoch, 10)
		if e, err := c.kv.Get(ctx, doneKey(c.cfg.Shard)); err != nil || string(e.Value()) != done {
			if _, err := c.kv.PutString(ctx, doneKey(c.cfg.Shard), done); err != nil {
				return err
			}
			c.log.Info("coordinator: handed over every domain this shard no longer owns", "epoch", sm.Epoch)
		}
	}
	return ctx.Err()
}

// moveBatch hands one batch of domains to their owners under sm.
func (c *Coordinator) moveBatch(ctx context.Context, sm ShardMap, batch []string) error {
	if c.cfg.Hold != nil {
		defer c.cfg.Hold()()
	}
	// A zone judged from its names (storage.History.Zone) goes with them:
	// its name is their shard key, so it has their owner.
	for _, d := range slices.Clone(batch) {
		if z := ShardKey(d); z != d {
			batch = append(batch, z)
		}
	}
	slices.Sort(batch)
	batch = slices.Compact(batch)
	// Marked under the commit lock: a batch of observations committed
	// after this sees the mark and gives its probes of these domains back
	// (commit), so none is stored after their histories are read.
	c.commitMu.Lock()
	for _, d := range batch {
		c.moving.Store(d, true)
	}
	c.commitMu.Unlock()
	defer func() {
		for _, d := range batch {
			c.moving.Delete(d)
		}
	}()
	var futures []jetstream.PubAckFuture
	err := c.store.Histories(batch, func(h storage.History) error {
		msgs, err := encodeHistory(h)
		if err != nil {
			return err
		}
		for _, data := range msgs {
			m := nats.NewMsg(c.names.move(sm.Owner(h.Name)))
			m.Data = data
			f, err := c.js.PublishMsgAsync(m)
			if err != nil {
				return err
			}
			futures = append(futures, f)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("handing over %d domains: %w", len(batch), err)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("handing over %d domains: %w", len(batch), err)
		case <-timeout.C:
			return fmt.Errorf("handing over %d domains: timed out waiting for JetStream", len(batch))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Every history is in the stream: the domains are the owner's now.
	n, err := c.store.DeleteDomains(batch)
	c.recount.Store(true)
	if err != nil {
		return fmt.Errorf("deleting %d domains handed over: %w", len(batch), err)
	}
	for _, d := range batch {
		c.known.Delete(d)
	}
	c.movedOut.Add(int64(n))
	c.log.Info("coordinator: handed domains to their shards", "domains", n, "messages", len(futures))
	return nil
}

// encodeHistory makes the move messages of one history: each is the
// history's JSON line (without its probes) followed by probes in the
// jsonl observation form, up to moveChunk bytes of them.
func encodeHistory(h storage.History) ([][]byte, error) {
	head, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	var b bytes.Buffer
	start := func() {
		b.Reset()
		b.Write(head)
		b.WriteByte('\n')
	}
	start()
	for _, p := range h.Probes {
		if b.Len() > len(head)+1 && b.Len() >= moveChunk {
			out = append(out, bytes.Clone(b.Bytes()))
			start()
		}
		if err := importer.Encode(&b, p); err != nil {
			return nil, fmt.Errorf("history of %s: %w", h.Name, err)
		}
	}
	return append(out, bytes.Clone(b.Bytes())), nil
}

// decodeHistory reads a move message.
func decodeHistory(data []byte) (storage.History, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	var h storage.History
	if !sc.Scan() {
		return h, errors.New("empty move message")
	}
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Name == "" {
		return h, fmt.Errorf("move message: the history line does not read: %v", err)
	}
	for line := 2; sc.Scan(); line++ {
		p, err := importer.Decode(sc.Bytes())
		if err != nil {
			return h, fmt.Errorf("move message of %s, line %d: %w", h.Name, line, err)
		}
		if p.Domain != h.Name {
			return h, fmt.Errorf("move message of %s, line %d: a probe of %s", h.Name, line, p.Domain)
		}
		h.Probes = append(h.Probes, p)
	}
	return h, sc.Err()
}

// moveIn stores the histories handed to this shard, a batch per
// transaction, acknowledged after the commit.
func (c *Coordinator) moveIn(ctx context.Context) {
	cc := jetstream.ConsumerConfig{
		Durable:       moveConsumer(c.cfg.Shard),
		Description:   "shard " + strconv.Itoa(c.cfg.Shard) + ", taking the domains handed to it",
		FilterSubject: c.names.move(c.cfg.Shard),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.IngestAckWait,
		MaxDeliver:    -1,
	}
	c.consume(ctx, c.names.moveStream(), cc, 100, func(batch []jetstream.Msg) {
		var msgs []jetstream.Msg
		var hs []storage.History
		for _, m := range batch {
			h, err := decodeHistory(m.Data())
			if err != nil {
				c.log.Error("coordinator: dropping a move message that does not read", "err", err)
				m.Term()
				continue
			}
			msgs, hs = append(msgs, m), append(hs, h)
		}
		if len(hs) == 0 {
			return
		}
		if err := c.store.PutHistories(hs); err != nil {
			c.log.Error("coordinator: storing the domains handed over failed; they will be delivered again", "err", err)
			for _, m := range msgs {
				m.NakWithDelay(c.cfg.RetryDelay)
			}
			return
		}
		for _, m := range msgs {
			m.Ack()
		}
		names := map[string]bool{}
		for _, h := range hs {
			names[h.Name] = true
		}
		c.movedIn.Add(int64(len(names)))
		c.recount.Store(true)
		if c.cfg.OnMoved != nil {
			c.cfg.OnMoved()
		}
	})
}

// consume hands the messages of a durable pull consumer to handle, up to
// batch at a time, until ctx ends; the consumer is made (again) when it
// is missing, with backoff while JetStream fails.
func (c *Coordinator) consume(ctx context.Context, stream string, cc jetstream.ConsumerConfig, batch int, handle func([]jetstream.Msg)) {
	var cons jetstream.Consumer
	fails := 0
	pause := func() {
		fails++
		sleep(ctx, backoff(fails, 100*time.Millisecond, 10*time.Second))
	}
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			if cons, err = c.js.CreateOrUpdateConsumer(ctx, stream, cc); err != nil {
				pause()
				continue
			}
		}
		got, err := cons.Fetch(batch, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() == nil && !isTimeout(err) {
				cons = nil
				pause()
			}
			continue
		}
		var msgs []jetstream.Msg
		for m := range got.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) > 0 {
			fails = 0
			handle(msgs)
		}
		// A fetch's server errors (the consumer deleted, no responders)
		// come after its messages, not from Fetch itself.
		if err := got.Error(); err != nil && ctx.Err() == nil && !isTimeout(err) {
			cons = nil
			pause()
		}
	}
}

// finishReshard ends a reshard once every old shard has handed over what
// it no longer owns and the move stream is empty. Every coordinator tries;
// the map's revision lets one win.
func (c *Coordinator) finishReshard(ctx context.Context) {
	sm := c.Map()
	if !sm.Moving() {
		return
	}
	want := strconv.FormatInt(sm.Epoch, 10)
	for k := range sm.From {
		e, err := c.kv.Get(ctx, doneKey(k))
		if err != nil || string(e.Value()) != want {
			return
		}
	}
	s, err := c.js.Stream(ctx, c.names.moveStream())
	if err != nil {
		return
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs > 0 {
		return
	}
	cur, rev, ok, err := readMap(ctx, c.kv)
	if err != nil || !ok || !cur.same(sm) {
		return
	}
	next := ShardMap{Shards: sm.Shards, Epoch: sm.Epoch, Since: c.cfg.Now().UTC()}
	b, _ := json.Marshal(next)
	if _, err := c.kv.Update(ctx, mapKey, b, rev); err == nil {
		c.log.Info("coordinator: reshard done", "shards", next.Shards, "from", sm.From, "epoch", sm.Epoch)
		c.shards.Store(&next)
	}
}

// ShardStatus returns the shard's status as of now.
func (c *Coordinator) ShardStatus(ctx context.Context) ShardStatus {
	st := ShardStatus{Shard: c.cfg.Shard, Shards: c.Map().Shards, Stored: c.stored.Load(),
		MovedOut: c.movedOut.Load(), MovedIn: c.movedIn.Load(), MovePending: int(c.movePending.Load()), Updated: c.cfg.Now()}
	counts := c.domainCounts()
	st.Domains, st.Dark = counts.Active, counts.Dark
	if p := c.published.Load(); p != nil {
		st.LastPublish, st.Listed = p.at, p.listed
	}
	if c.isReady() {
		if cons, err := c.js.Consumer(ctx, c.names.obsStream(), obsConsumer(c.cfg.Shard)); err == nil {
			if info, err := cons.Info(ctx); err == nil {
				st.Lag = info.NumPending + uint64(info.NumAckPending)
			}
		}
	}
	return st
}

// recountEvery is how often the shard's status counts its domains (a
// read of every domain record) when nothing it knows of changed them.
const recountEvery = time.Minute

// domainCounts returns the shard's domain counts: counted again when
// domains came or went (seeds, moves) or recountEvery has passed.
func (c *Coordinator) domainCounts() storage.DomainCounts {
	c.countsMu.Lock()
	defer c.countsMu.Unlock()
	if c.recount.Swap(false) || time.Since(c.countedAt) >= recountEvery {
		if counts, err := c.store.CountDomains(); err == nil {
			c.counts, c.countedAt = counts, time.Now()
		}
	}
	return c.counts
}

// writeStatus keeps the shard's status in the shards bucket.
func (c *Coordinator) writeStatus(ctx context.Context) error {
	b, err := json.Marshal(c.ShardStatus(ctx))
	if err != nil {
		return err
	}
	_, err = c.kv.Put(ctx, statusKey(c.cfg.Shard), b)
	return err
}

// ClusterState reads the shard map and every shard's last status; nil
// when the cluster has no map (a coordinator that has not reached NATS
// yet, a cluster never sharded) or NATS does not answer within ctx.
func (c *Coordinator) ClusterState(ctx context.Context) *ClusterState {
	if !c.isReady() {
		return nil
	}
	st, ok, err := LoadClusterState(ctx, c.js, c.cfg.Prefix)
	if err != nil || !ok {
		return nil
	}
	return &st
}
