package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/storage"
)

// CoordinatorConfig configures a Coordinator. The zero value works against
// nats://127.0.0.1:4222 with one region, "default".
type CoordinatorConfig struct {
	Conn ConnConfig
	// Prefix is the first subject token (default "fluxwatch").
	Prefix string
	// Targets are where each due domain is sent, "region:NAME" or
	// "agent:NAME" (default region:default): one work item per domain and
	// target, so every region measures every domain through its own
	// vantages.
	Targets []string
	// Lease is how long a dispatched domain is not due again while its
	// observations are awaited (default 10m); items older than that are
	// dropped by the agents unmeasured.
	Lease time.Duration
	// MinInterval and MaxInterval clamp the time to a domain's next
	// measurement after its observations arrive, as the local scheduler
	// does (defaults 1m and 1h); DarkMaxInterval caps the wait of a dark
	// domain (default scheduler.DefaultDarkMaxInterval).
	MinInterval, MaxInterval, DarkMaxInterval time.Duration
	// Streams bound what the streams keep.
	Streams StreamLimits
	// IngestBatch is the most observations stored in one transaction
	// (default 1000); IngestInFlight the most delivered and not yet
	// acknowledged (the consumer's MaxAckPending, default 20000).
	IngestBatch, IngestInFlight int
	// IngestAckWait is how long JetStream waits for the coordinator to
	// acknowledge an observation before delivering it again (default 1m).
	IngestAckWait time.Duration
	// RetryDelay is how long an observation that could not be stored for
	// now (the database failed to read or write) waits before JetStream
	// delivers it again (default 5s).
	RetryDelay time.Duration

	// Shard is this coordinator's shard (0 … Shards−1) and Shards the
	// cluster's count when it has none yet (see shard.go: the count in
	// NATS wins). The zero values are one coordinator, unsharded.
	Shard, Shards int
	// MoveBatch is how many domains a move hands over at once (default
	// 200); StatusInterval how often the shard's status is written and a
	// move looked for (default 5s).
	MoveBatch      int
	StatusInterval time.Duration
	// Hold, if set, is held while a batch of domains is handed over (from
	// reading their histories to deleting them): the daemon's lock of its
	// classification and list, so that no verdict of a domain being moved
	// is written after its history was read.
	Hold func() (release func())
	// OnMoved, if set, is called after domains moved to or from the
	// shard, with their listings: the shard's list has changed.
	OnMoved func()

	// Now is the clock of leases and next-due times; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// OnStored, if set, is called after each committed batch with the IDs
	// of the observations it stored (redeliveries included).
	OnStored func(ids []string)
}

func (c *CoordinatorConfig) setDefaults() {
	c.Prefix = cmp.Or(c.Prefix, DefaultPrefix)
	if len(c.Targets) == 0 {
		c.Targets = []string{"region:" + DefaultRegion}
	}
	c.Lease = cmp.Or(c.Lease, 10*time.Minute)
	c.MinInterval = cmp.Or(c.MinInterval, time.Minute)
	if c.MaxInterval < c.MinInterval {
		c.MaxInterval = max(time.Hour, c.MinInterval)
	}
	if c.DarkMaxInterval < c.MaxInterval {
		c.DarkMaxInterval = max(scheduler.DefaultDarkMaxInterval, c.MaxInterval)
	}
	c.IngestBatch = cmp.Or(c.IngestBatch, 1000)
	c.IngestInFlight = max(cmp.Or(c.IngestInFlight, 20000), c.IngestBatch)
	c.IngestAckWait = cmp.Or(c.IngestAckWait, time.Minute)
	c.RetryDelay = cmp.Or(c.RetryDelay, 5*time.Second)
	c.Shards = max(c.Shards, 1)
	c.MoveBatch = cmp.Or(c.MoveBatch, 200)
	c.StatusInterval = cmp.Or(c.StatusInterval, 5*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the configuration.
func (c *CoordinatorConfig) Validate() error {
	errs := []error{c.Conn.Validate()}
	if c.Prefix != "" {
		errs = append(errs, checkName("prefix", c.Prefix))
	}
	for _, t := range c.Targets {
		if _, err := ParseTarget(t); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Lease < 0 || c.MinInterval < 0 || c.MaxInterval < 0 || c.IngestAckWait < 0 || c.RetryDelay < 0 {
		errs = append(errs, errors.New("coordinator: negative duration"))
	}
	if c.IngestBatch < 0 || c.IngestInFlight < 0 {
		errs = append(errs, errors.New("coordinator: negative ingest bound"))
	}
	if c.Shards != 0 || c.Shard != 0 {
		errs = append(errs, checkShard(c.Shard, max(c.Shards, 1)))
	}
	if c.MoveBatch < 0 || c.StatusInterval < 0 {
		errs = append(errs, errors.New("coordinator: negative move batch or status interval"))
	}
	return errors.Join(errs...)
}

// ErrNotReady means the coordinator has not reached NATS and set up its
// streams yet.
var ErrNotReady = errors.New("coordinator is not connected to NATS yet")

// CoordinatorStore is what the coordinator needs of the database;
// *storage.Store is one. It must be safe for concurrent use.
type CoordinatorStore interface {
	// Due returns the active domains due by now.
	Due(now time.Time) ([]string, error)
	// SetNextDue records when domains are due next (a lease).
	SetNextDue([]storage.Due) error
	// SetMeasured records when measured domains are due next, and their
	// dark counts; DarkCounts reads those counts.
	SetMeasured([]storage.Measured) error
	DarkCounts(names []string) ([]int, error)
	// WriteProbes stores probes in one transaction: all or none.
	WriteProbes([]obs.Probe) (int, error)
	// Domain reads one domain's record; ok is false for a domain never
	// added.
	Domain(name string) (d storage.Domain, ok bool, err error)
	// CountDomains counts the active and the dark domains.
	CountDomains() (storage.DomainCounts, error)
	// AddDomains adds seeds another shard read, RemoveDomains removes
	// those removed there (seeds.go).
	AddDomains(names []string, source string, now time.Time) (storage.AddResult, error)
	RemoveDomains(names []string) (storage.RemoveResult, error)

	// What a shard needs to hand domains to another (mover.go): every
	// domain's record, the whole history of some, storing histories
	// handed over, and deleting what was handed over.
	Domains(fn func(storage.Domain) error) error
	Histories(names []string, fn func(storage.History) error) error
	PutHistories([]storage.History) error
	DeleteDomains(names []string) (int, error)
}

var _ CoordinatorStore = (*storage.Store)(nil)

// Coordinator hands due domains to agents and stores what they measured.
// See the package comment.
type Coordinator struct {
	cfg     CoordinatorConfig
	store   CoordinatorStore
	names   names
	targets []Target
	log     *slog.Logger

	ready  chan struct{} // closed once connected and the streams exist
	js     jetstream.JetStream
	cancel context.CancelFunc
	wg     sync.WaitGroup

	dispatchMu sync.Mutex // one dispatch at a time

	known sync.Map // domain → true: known to the store
	// unheard holds the domains dispatched whose observations have not
	// come yet, with their dispatch time: the first batch that brings a
	// domain's observations counts its dark measurement, once a dispatch.
	unheardMu sync.Mutex
	unheard   map[string]time.Time

	agentsMu sync.Mutex
	agents   map[string]AgentStatus

	// Sharding (shard.go, mover.go): the cluster's map as last read, the
	// shards bucket (nil until ready), the domains being handed to their
	// owner (not dispatched), the shard's last publish, a wish to write
	// the status now, the map of the last scan that left nothing to hand
	// over, and the move counts.
	shards      atomic.Pointer[ShardMap]
	kv          jetstream.KeyValue
	moving      sync.Map
	commitMu    sync.Mutex // held by a commit; the moving marks are set under it
	published   atomic.Pointer[publishMark]
	statusNow   chan struct{}
	scanned     atomic.Pointer[ShardMap]
	movedOut    atomic.Int64
	movedIn     atomic.Int64
	movePending atomic.Int64
	// The status's domain counts, and when they were counted; recount
	// says domains came or went since.
	countsMu  sync.Mutex
	counts    storage.DomainCounts
	countedAt time.Time
	recount   atomic.Bool

	received, stored, redelivered, rejected, retried, batches, forwarded atomic.Int64
}

// CoordinatorStats count what the coordinator did since it started.
type CoordinatorStats struct {
	// Received counts observation messages taken from the stream, Stored
	// those committed (redeliveries included: they overwrite themselves),
	// Redelivered those delivered more than once, Rejected those that can
	// never be stored (malformed, unknown domain): terminated, never
	// delivered again. Retried counts deliveries given back for a delayed
	// redelivery because the database failed for now.
	Received, Stored, Redelivered, Rejected, Retried int64
	// Batches counts the transactions that stored them.
	Batches int64
	// Forwarded counts observations of domains another shard owns, sent
	// on to it.
	Forwarded int64
}

// NewCoordinator returns a coordinator over store; Start it.
func NewCoordinator(store CoordinatorStore, cfg CoordinatorConfig) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	c := &Coordinator{cfg: cfg, store: store, names: names{cfg.Prefix}, log: cfg.Logger.With("component", "coordinator"),
		ready: make(chan struct{}), agents: map[string]AgentStatus{}, statusNow: make(chan struct{}, 1)}
	if cfg.Shards > 1 || cfg.Shard > 0 {
		c.log = c.log.With("shard", cfg.Shard)
	}
	c.shards.Store(&ShardMap{Shards: cfg.Shards})
	for _, t := range cfg.Targets {
		tt, _ := ParseTarget(t) // validated
		if !slices.Contains(c.targets, tt) {
			c.targets = append(c.targets, tt)
		}
	}
	return c, nil
}

// Start connects to NATS and runs, in the background, the setup of the
// streams (retried until it succeeds), the ingest of observations and the
// tracking of heartbeats, until ctx is done or Close is called. It fails
// only on settings that cannot work; an unreachable server is retried.
func (c *Coordinator) Start(ctx context.Context) error {
	conn := c.cfg.Conn
	conn.Name = cmp.Or(conn.Name, "fluxwatch-coordinator")
	nc, err := connect(conn, c.log)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return fmt.Errorf("coordinator: %w", err)
	}
	c.js = js
	ctx, c.cancel = context.WithCancel(ctx)
	c.log.Info("coordinator starting", "server", conn.Redacted(), "targets", c.cfg.Targets)
	c.wg.Go(func() {
		defer nc.Close()
		c.run(ctx, nc)
	})
	return nil
}

// Close stops the coordinator and waits for it: the batch being stored is
// committed and acknowledged first.
func (c *Coordinator) Close() error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	return nil
}

// WaitReady waits until the coordinator is connected and its streams
// exist, or ctx is done.
func (c *Coordinator) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Coordinator) isReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

func (c *Coordinator) run(ctx context.Context, nc *nats.Conn) {
	for fails := 1; ; fails++ {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := ensureStreams(sctx, c.js, c.names, c.cfg.Streams)
		cancel()
		if err == nil {
			err = c.setupShards(ctx)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if fails == 1 || fails%30 == 0 {
			c.log.Warn("coordinator: setting up streams and the shard map", "err", err)
		}
		sleep(ctx, backoff(fails, 100*time.Millisecond, 10*time.Second))
	}
	if agents, err := LoadAgents(ctx, c.js, c.cfg.Prefix); err == nil {
		c.agentsMu.Lock()
		for _, a := range agents {
			c.agents[a.Agent] = a
		}
		c.agentsMu.Unlock()
	}
	sub, err := nc.Subscribe(c.names.heartbeatAll(), func(m *nats.Msg) {
		h, err := decodeHeartbeat(m.Data)
		if err != nil {
			c.log.Debug("coordinator: bad heartbeat", "subject", m.Subject, "err", err)
			return
		}
		c.agentsMu.Lock()
		c.agents[h.Agent] = AgentStatus{Heartbeat: h, Received: time.Now()}
		c.agentsMu.Unlock()
	})
	if err != nil {
		c.log.Warn("coordinator: subscribing to heartbeats", "err", err)
	} else {
		defer sub.Unsubscribe()
	}
	close(c.ready)
	var wg sync.WaitGroup
	wg.Go(func() { c.watchShards(ctx) })
	wg.Go(func() { c.moveIn(ctx) })
	wg.Go(func() { c.takeSeeds(ctx) })
	wg.Go(func() { c.shardLoop(ctx) })
	c.ingest(ctx)
	wg.Wait()
}

// Agents returns the last heartbeat of every agent heard of, by name.
func (c *Coordinator) Agents() []AgentStatus {
	c.agentsMu.Lock()
	defer c.agentsMu.Unlock()
	out := make([]AgentStatus, 0, len(c.agents))
	for _, a := range c.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out
}

// Stats returns the ingest counts.
func (c *Coordinator) Stats() CoordinatorStats {
	return CoordinatorStats{Received: c.received.Load(), Stored: c.stored.Load(), Redelivered: c.redelivered.Load(),
		Rejected: c.rejected.Load(), Retried: c.retried.Load(), Batches: c.batches.Load(), Forwarded: c.forwarded.Load()}
}

// DispatchStats describe one dispatch.
type DispatchStats struct {
	Round     int64 // Unix nanoseconds of the dispatch, on the coordinator's clock
	Domains   int   // due domains leased
	Published int   // work items JetStream acknowledged
	Failed    int   // items not published; their domains are due again
}

// Dispatch leases the domains due now and publishes one work item per
// domain and target. Call it on the crawl schedule; dispatches do not
// overlap.
func (c *Coordinator) Dispatch(ctx context.Context) (DispatchStats, error) {
	due, err := c.store.Due(c.cfg.Now())
	if err != nil {
		return DispatchStats{}, fmt.Errorf("dispatch: %w", err)
	}
	// A domain being handed to its owner is measured there next.
	due = slices.DeleteFunc(due, func(d string) bool { _, ok := c.moving.Load(d); return ok })
	return c.DispatchDomains(ctx, due)
}

// DispatchDomains is Dispatch for the given domains, due or not.
func (c *Coordinator) DispatchDomains(ctx context.Context, domains []string) (DispatchStats, error) {
	if !c.isReady() {
		return DispatchStats{}, ErrNotReady
	}
	c.dispatchMu.Lock()
	defer c.dispatchMu.Unlock()
	now := c.cfg.Now()
	st := DispatchStats{Round: now.UnixNano(), Domains: len(domains)}
	if len(domains) == 0 {
		return st, nil
	}
	// Lease first: observations that come back before the lease is
	// written would otherwise have their next-due time overwritten.
	expires := now.Add(c.cfg.Lease)
	lease := make([]storage.Due, len(domains))
	for i, d := range domains {
		lease[i] = storage.Due{Domain: d, At: expires}
	}
	if err := c.store.SetNextDue(lease); err != nil {
		return st, fmt.Errorf("dispatch: leasing: %w", err)
	}
	c.unheardMu.Lock()
	if c.unheard == nil {
		c.unheard = map[string]time.Time{}
	}
	for d, at := range c.unheard {
		if now.Sub(at) > c.cfg.Lease {
			delete(c.unheard, d) // never measured: its lease ran out
		}
	}
	for _, d := range domains {
		c.unheard[d] = now
	}
	c.unheardMu.Unlock()
	type pending struct {
		domain string
		f      jetstream.PubAckFuture
	}
	var sent []pending
	failed := map[string]bool{}
	shards := c.Map().Shards
	for _, d := range domains {
		body, err := json.Marshal(Work{Domain: d, Round: st.Round, Expires: expires, Shard: c.cfg.Shard, Shards: shards})
		if err != nil {
			return st, err
		}
		for _, t := range c.targets {
			m := nats.NewMsg(t.subject(c.names))
			m.Header.Set(nats.MsgIdHdr, workID(t, d, st.Round))
			m.Data = body
			f, err := c.js.PublishMsgAsync(m)
			if err != nil {
				failed[d] = true
				continue
			}
			sent = append(sent, pending{d, f})
		}
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var perr error
wait:
	for i, p := range sent {
		select {
		case <-p.f.Ok():
			st.Published++
			continue
		case err := <-p.f.Err():
			failed[p.domain] = true
			perr = err
			continue
		case <-timeout.C:
			perr = errors.New("timed out waiting for JetStream's acknowledgements")
		case <-ctx.Done():
			perr = ctx.Err()
		}
		for _, q := range sent[i:] {
			failed[q.domain] = true
		}
		break wait
	}
	if len(failed) > 0 {
		st.Failed = len(failed)
		// Due again at once: the next dispatch tries them again.
		back := make([]storage.Due, 0, len(failed))
		for d := range failed {
			back = append(back, storage.Due{Domain: d, At: now})
		}
		if err := c.store.SetNextDue(back); err != nil {
			return st, errors.Join(perr, fmt.Errorf("dispatch: releasing leases: %w", err))
		}
		return st, fmt.Errorf("dispatch: %d of %d domains not published: %w", len(failed), len(domains), perr)
	}
	return st, nil
}

// ingest takes observations from the stream, stores them a batch per
// transaction and acknowledges each batch once committed. The fetcher
// decodes the next batch while the last one commits: decoding costs more
// CPU than the transaction.
func (c *Coordinator) ingest(ctx context.Context) {
	batches := make(chan ingestBatch, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(batches)
		c.fetch(ctx, batches)
	})
	for b := range batches {
		c.commit(b)
	}
	wg.Wait()
}

// ingestBatch is a batch of observations decoded and ready to store.
type ingestBatch struct {
	msgs   []jetstream.Msg
	probes []obs.Probe
	ids    []string
}

func (c *Coordinator) fetch(ctx context.Context, out chan<- ingestBatch) {
	cc := jetstream.ConsumerConfig{
		Durable:        obsConsumer(c.cfg.Shard),
		Description:    "the coordinator of shard " + strconv.Itoa(c.cfg.Shard) + ", storing observations",
		FilterSubjects: c.names.obsFilters(c.cfg.Shard),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.IngestAckWait,
		MaxAckPending:  c.cfg.IngestInFlight,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	var iter jetstream.MessagesContext
	defer func() {
		if iter != nil {
			iter.Stop()
		}
	}()
	fails := 0
	pause := func(err error) {
		fails++
		if fails == 1 || fails%30 == 0 {
			c.log.Warn("coordinator: consuming observations", "err", err)
		}
		sleep(ctx, backoff(fails, 100*time.Millisecond, 10*time.Second))
	}
	for ctx.Err() == nil {
		if iter == nil {
			cons, err := c.js.CreateOrUpdateConsumer(ctx, c.names.obsStream(), cc)
			if err == nil {
				iter, err = cons.Messages(jetstream.PullMaxMessages(2 * c.cfg.IngestBatch))
			}
			if err != nil {
				pause(err)
				continue
			}
		}
		m, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				iter.Stop()
				iter = nil
			}
			pause(err)
			continue
		}
		fails = 0
		batch := []jetstream.Msg{m}
		// Take what is already there, up to a batch, without waiting long.
		deadline := time.Now().Add(20 * time.Millisecond)
		for len(batch) < c.cfg.IngestBatch {
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			m, err := iter.Next(jetstream.NextMaxWait(wait))
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		b := c.decode(batch)
		if len(b.msgs) == 0 {
			continue
		}
		select {
		case out <- b:
		case <-ctx.Done():
			// Not stored: JetStream delivers them again after AckWait.
			return
		}
	}
}

// decode reads a batch of messages; those that can never be stored
// (malformed, of an unknown domain) are terminated and left out. Those
// whose domain could not be looked up (the database failed) are given
// back for a delayed redelivery: a passing error must not drop them.
func (c *Coordinator) decode(msgs []jetstream.Msg) ingestBatch {
	b := ingestBatch{msgs: make([]jetstream.Msg, 0, len(msgs)), probes: make([]obs.Probe, 0, len(msgs)), ids: make([]string, 0, len(msgs))}
	retry, retryErr := 0, error(nil) // logged once for the batch: a failing database fails them all
	for _, m := range msgs {
		c.received.Add(1)
		if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
			c.redelivered.Add(1)
		}
		p, err := decodeObservation(m.Data())
		if err != nil {
			err = &unstorable{err}
		} else {
			err = c.checkDomain(p.Domain)
		}
		var never *unstorable
		if errors.As(err, &never) && errors.Is(err, storage.ErrUnknownDomain) {
			// Not a domain of this database: one handed to another
			// shard (its observations go there), or one on its way here.
			switch c.elsewhere(m, p.Domain) {
			case forwarded:
				continue
			case arriving:
				c.retried.Add(1)
				m.NakWithDelay(c.cfg.RetryDelay)
				continue
			}
		}
		switch {
		case errors.As(err, &never):
			c.rejected.Add(1)
			c.log.Warn("coordinator: dropping an observation that can never be stored", "subject", m.Subject(), "agent", m.Headers().Get(headerAgent), "err", err)
			m.Term()
			continue
		case err != nil:
			c.retried.Add(1)
			retry++
			retryErr = cmp.Or(retryErr, err)
			m.NakWithDelay(c.cfg.RetryDelay)
			continue
		}
		b.msgs = append(b.msgs, m)
		b.probes = append(b.probes, p)
		b.ids = append(b.ids, observationIDOf(m))
	}
	if retry > 0 {
		c.log.Error("coordinator: looking up observations' domains failed; they will be delivered again",
			"observations", retry, "retry_in", c.cfg.RetryDelay, "err", retryErr)
	}
	return b
}

// commit stores a batch in one transaction and then acknowledges its
// messages; when the transaction fails, the batch is given back. The
// probes of domains being handed to another shard are given back first
// (see moveBatch): their next delivery finds them gone, and forwards them.
func (c *Coordinator) commit(b ingestBatch) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	b = c.leaveMoving(b)
	if len(b.msgs) == 0 {
		return
	}
	if _, err := c.store.WriteProbes(b.probes); err != nil {
		c.log.Error("coordinator: storing observations failed; they will be delivered again", "probes", len(b.probes), "retry_in", c.cfg.RetryDelay, "err", err)
		c.retried.Add(int64(len(b.msgs)))
		for _, m := range b.msgs {
			m.NakWithDelay(c.cfg.RetryDelay)
		}
		return
	}
	for _, m := range b.msgs {
		m.Ack()
	}
	c.stored.Add(int64(len(b.msgs)))
	c.batches.Add(1)
	if c.cfg.OnStored != nil {
		c.cfg.OnStored(b.ids)
	}
	if err := c.measured(b.probes); err != nil {
		c.log.Warn("coordinator: setting next-due times", "err", err)
	}
}

// leaveMoving gives back the messages of b whose domains are being handed
// to another shard, and returns the rest.
func (c *Coordinator) leaveMoving(b ingestBatch) ingestBatch {
	keep := 0
	for i, m := range b.msgs {
		if _, moving := c.moving.Load(b.probes[i].Domain); moving {
			c.retried.Add(1)
			m.NakWithDelay(c.cfg.RetryDelay)
			continue
		}
		b.msgs[keep], b.probes[keep], b.ids[keep] = m, b.probes[i], b.ids[i]
		keep++
	}
	b.msgs, b.probes, b.ids = b.msgs[:keep], b.probes[:keep], b.ids[:keep]
	return b
}

// unstorable marks the errors of messages that can never be stored: not
// an observation, or one of a domain the store does not know.
type unstorable struct{ err error }

func (e *unstorable) Error() string { return e.err.Error() }
func (e *unstorable) Unwrap() error { return e.err }

// checkDomain fails for a domain the store does not know (WriteProbes
// would fail the whole batch for it) with an *unstorable error; a failure
// to read the store is returned as it is, to be retried.
func (c *Coordinator) checkDomain(name string) error {
	if _, ok := c.known.Load(name); ok {
		return nil
	}
	_, ok, err := c.store.Domain(name)
	if err != nil {
		return fmt.Errorf("looking up %q: %w", name, err)
	}
	if !ok {
		return &unstorable{fmt.Errorf("%w %q", storage.ErrUnknownDomain, name)}
	}
	c.known.Store(name, true)
	return nil
}

// measured stores the next measurement of each domain of a stored batch,
// and forgets the dispatches it counted only once that is stored.
func (c *Coordinator) measured(probes []obs.Probe) error {
	due, counted, err := c.nextDue(probes)
	if err != nil {
		return err
	}
	if err := c.store.SetMeasured(due); err != nil {
		return err
	}
	c.unheardMu.Lock()
	for _, d := range counted {
		delete(c.unheard, d)
	}
	c.unheardMu.Unlock()
	return nil
}

// nextDue gives each domain of the batch its next measurement, as the
// local scheduler does (scheduler.Outcome). A domain no probe of the batch
// got an answer for is dark once more, counted by the first batch of its
// dispatch (later ones of the same dispatch keep the count); counted are
// the domains whose dispatch this batch answered for, to be forgotten once
// the times are stored.
func (c *Coordinator) nextDue(probes []obs.Probe) (due []storage.Measured, counted []string, err error) {
	outcomes := map[string]*scheduler.Outcome{}
	var names []string
	for _, p := range probes {
		o := outcomes[p.Domain]
		if o == nil {
			o = &scheduler.Outcome{}
			outcomes[p.Domain] = o
			names = append(names, p.Domain)
		}
		o.Add(p)
	}
	var silent []string
	for _, d := range names {
		if !outcomes[d].Answered() {
			silent = append(silent, d)
		}
	}
	dark, err := c.store.DarkCounts(silent)
	if err != nil {
		return nil, nil, err
	}
	now := c.cfg.Now()
	iv := scheduler.Intervals{Min: c.cfg.MinInterval, Max: c.cfg.MaxInterval, DarkMax: c.cfg.DarkMaxInterval}
	c.unheardMu.Lock()
	defer c.unheardMu.Unlock()
	due = make([]storage.Measured, 0, len(names))
	for _, d := range names {
		o := outcomes[d]
		_, first := c.unheard[d]
		if first {
			counted = append(counted, d)
		}
		var n int
		if !o.Answered() {
			n, dark = dark[0], dark[1:]
			if first {
				n++
			}
		}
		due = append(due, o.Next(d, n, now, iv))
	}
	return due, counted, nil
}

// LoadAgents reads the last heartbeat of every agent from the heartbeat
// stream: what `fluxwatch status` shows, without a coordinator.
func LoadAgents(ctx context.Context, js jetstream.JetStream, prefix string) ([]AgentStatus, error) {
	n := names{cmp.Or(prefix, DefaultPrefix)}
	s, err := js.Stream(ctx, n.heartbeatStream())
	if err != nil {
		return nil, fmt.Errorf("reading heartbeats: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(n.heartbeatAll()))
	if err != nil {
		return nil, fmt.Errorf("reading heartbeats: %w", err)
	}
	var out []AgentStatus
	for subject := range info.State.Subjects {
		m, err := s.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			continue // expired meanwhile
		}
		h, err := decodeHeartbeat(m.Data)
		if err != nil {
			continue
		}
		out = append(out, AgentStatus{Heartbeat: h, Received: m.Time})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out, nil
}

// ConnectAndLoadAgents connects with conn, reads the agents' last
// heartbeats (LoadAgents) and disconnects.
func ConnectAndLoadAgents(ctx context.Context, conn ConnConfig, prefix string, log *slog.Logger) ([]AgentStatus, error) {
	conn.Name = cmp.Or(conn.Name, "fluxwatch-status")
	js, closeConn, err := Connect(conn, log)
	if err != nil {
		return nil, err
	}
	defer closeConn()
	return LoadAgents(ctx, js, prefix)
}
