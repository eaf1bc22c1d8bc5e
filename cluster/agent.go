package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
)

// AgentConfig configures an Agent. Name, Vantages and Outbox are
// required; everything else has a default.
type AgentConfig struct {
	Conn ConnConfig
	// Name identifies the agent: its own work subject, its observation
	// subject, its heartbeat. Letters, digits, '-' and '_'.
	Name string
	// Region is the group of agents that share work (default "default").
	Region string
	// Prefix is the first subject token (default "fluxwatch").
	Prefix string

	// Vantages are the resolvers to measure through, with QPS, Burst and
	// GlobalQPS as in scheduler.Options: a token bucket per vantage (QPS 0
	// or less lifts the limit: for one's own resolvers only), and
	// optionally one over all.
	Vantages  []scheduler.Vantage
	QPS       float64
	Burst     int
	GlobalQPS float64
	// Retries is as in scheduler.Options: extra attempts of a query that
	// timed out, while its vantage answers others (0: one; negative: none).
	Retries int
	// Canary is as in scheduler.Options: the name whose SOA decides
	// whether a vantage that stopped answering is down ("": the root).
	Canary string
	// VantageLabel qualifies the vantages in the probes the agent sends,
	// as LABEL/ADDR (default: the region): the same resolver address asked
	// from two networks is two vantages.
	VantageLabel string

	// InFlight is how many work items the agent holds at once, each
	// measured through every vantage (default 16).
	InFlight int
	// AckWait is how long JetStream waits for an item's acknowledgement
	// before handing it to another agent (default 30s); while measuring,
	// the agent says it is in progress every AckWait/3. MaxDeliver is how
	// often an item is handed out at most (default 10). Both are settings
	// of the region's shared consumer, which every agent of the region
	// writes when it starts: give them the same values.
	AckWait    time.Duration
	MaxDeliver int
	// RegionMaxAckPending bounds the items all the agents of the region
	// hold together (default 1024).
	RegionMaxAckPending int

	// Outbox is the path of the agent's outbox file, bounded by
	// OutboxOptions.
	Outbox        string
	OutboxOptions OutboxOptions
	// PublishTimeout is how long the agent waits for JetStream to
	// acknowledge an item's observations before it relies on the outbox
	// (default 5s); ResendInterval is how often it sends the outbox again
	// (default 10s).
	PublishTimeout, ResendInterval time.Duration
	// HeartbeatInterval is how often the agent says how it is (default 10s).
	HeartbeatInterval time.Duration

	// Now is the clock stamped on probes; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// OnPublished, if set, is called with the ID of every observation
	// JetStream acknowledged.
	OnPublished func(id string)
}

func (c *AgentConfig) setDefaults() {
	c.Region = cmp.Or(c.Region, DefaultRegion)
	c.Prefix = cmp.Or(c.Prefix, DefaultPrefix)
	c.VantageLabel = cmp.Or(c.VantageLabel, c.Region)
	c.InFlight = cmp.Or(c.InFlight, 16)
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, 10)
	c.RegionMaxAckPending = cmp.Or(c.RegionMaxAckPending, 1024)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, 5*time.Second)
	c.ResendInterval = cmp.Or(c.ResendInterval, 10*time.Second)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, 10*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the configuration.
func (c *AgentConfig) Validate() error {
	errs := []error{c.Conn.Validate(), checkName("agent name", c.Name)}
	if c.Region != "" {
		errs = append(errs, checkName("region", c.Region))
	}
	if c.Prefix != "" {
		errs = append(errs, checkName("prefix", c.Prefix))
	}
	if len(c.Vantages) == 0 {
		errs = append(errs, errors.New("agent: no vantage resolvers"))
	}
	if c.Outbox == "" {
		errs = append(errs, errors.New("agent: no outbox file"))
	}
	if c.InFlight < 0 || c.MaxDeliver < 0 || c.RegionMaxAckPending < 0 {
		errs = append(errs, errors.New("agent: negative in-flight or delivery bound"))
	}
	if c.AckWait < 0 || c.PublishTimeout < 0 || c.ResendInterval < 0 || c.HeartbeatInterval < 0 {
		errs = append(errs, errors.New("agent: negative duration"))
	}
	return errors.Join(errs...)
}

// Agent measures the work addressed to it, or to its region, through its
// own resolvers and publishes what it measured. See the package comment.
type Agent struct {
	cfg      AgentConfig
	crawler  crawler.Crawler
	vantages *scheduler.Vantages // the crawler's query path, and each vantage's health
	names    names
	log      *slog.Logger
	counts   *queryCounts
	rounds   roundCache
	started  time.Time

	inFlight                                       atomic.Int64
	done, failed, expired, redelivered, probeCount atomic.Int64

	mu                      sync.Mutex
	pub                     *Publisher  // of the last run
	box                     *Outbox     // of the running run; nil once it ended
	boxAtEnd                OutboxStats // the outbox as the last run left it
	lastRates               [2]float64  // probes/s, queries/s
	rateAt                  time.Time
	rateProbes, rateQueries int64
}

// NewAgent returns an agent that measures with c, its queries sent through
// q under the configured rate limits (and c.Direct, if set, under one
// shared limit), as scheduler.New does for a local crawl.
func NewAgent(q crawler.Querier, c crawler.Crawler, cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	a := &Agent{cfg: cfg, names: names{cfg.Prefix}, log: cfg.Logger.With("agent", cfg.Name), counts: &queryCounts{}}
	a.vantages = scheduler.NewVantages(counted{q, a.counts}, scheduler.Options{
		Vantages: cfg.Vantages, QPS: cfg.QPS, Burst: cfg.Burst, GlobalQPS: cfg.GlobalQPS,
		Retries: cfg.Retries, Canary: cfg.Canary, Now: cfg.Now, Logger: a.log,
	})
	c.Querier = a.vantages.Querier()
	if c.Direct != nil {
		c.Direct = scheduler.LimitDirect(counted{c.Direct, a.counts}, cfg.QPS, cfg.Burst)
	}
	if c.Now == nil {
		c.Now = cfg.Now
	}
	a.crawler = c
	return a, nil
}

// Run works until ctx is done and then stops at once: the connection is
// closed without draining, items being measured are given up (JetStream
// hands them out again after AckWait) and the outbox keeps what JetStream
// has not acknowledged, for the next run. Run returns nil when stopped by
// ctx, or the error that kept it from starting.
func (a *Agent) Run(ctx context.Context) error {
	box, err := OpenOutbox(a.cfg.Outbox, a.cfg.OutboxOptions)
	if err != nil {
		return err
	}
	defer func() { // the last thing Run does: heartbeats after it report what it left
		a.mu.Lock()
		defer a.mu.Unlock()
		if st, err := box.Stats(); err == nil {
			a.boxAtEnd = st
		}
		a.box = nil
		box.Close()
	}()
	conn := a.cfg.Conn
	conn.Name = cmp.Or(conn.Name, "fluxwatch-agent-"+a.cfg.Name)
	nc, err := connect(conn, a.log)
	if err != nil {
		return err
	}
	defer nc.Close()
	stopConn := context.AfterFunc(ctx, nc.Close)
	defer stopConn()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512), jetstream.WithPublishAsyncTimeout(a.cfg.PublishTimeout))
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.cfg.Name, err)
	}
	pub := newPublisher(js, box, a.cfg.Name, a.names.obs(a.cfg.Name), a.cfg.PublishTimeout, a.cfg.ResendInterval, a.log, a.cfg.OnPublished)
	a.mu.Lock()
	a.pub, a.box, a.started, a.rateAt = pub, box, a.cfg.Now(), time.Now()
	a.mu.Unlock()
	a.log.Info("agent starting", "server", conn.Redacted(), "region", a.cfg.Region, "vantages", len(a.cfg.Vantages),
		"in_flight", a.cfg.InFlight, "outbox", a.cfg.Outbox)

	var wg sync.WaitGroup
	wg.Go(func() { pub.run(ctx) })
	wg.Go(func() { a.heartbeats(ctx, nc) })
	work := make(chan jetstream.Msg)
	slots := make(chan struct{}, a.cfg.InFlight) // one token per item held
	for range a.cfg.InFlight {
		wg.Go(func() {
			for {
				select {
				case m := <-work:
					a.handle(ctx, m, pub)
					<-slots
				case <-ctx.Done():
					return
				}
			}
		})
	}
	for _, cc := range a.consumers() {
		wg.Go(func() { a.pull(ctx, js, cc, work, slots) })
	}
	wg.Wait()
	a.log.Info("agent stopped", "work_done", a.done.Load(), "probes", a.probeCount.Load())
	return nil
}

// consumers are the agent's two durable pull consumers on the work
// stream: its own, and its region's (shared with the region's agents).
func (a *Agent) consumers() []jetstream.ConsumerConfig {
	base := jetstream.ConsumerConfig{
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       a.cfg.AckWait,
		MaxDeliver:    a.cfg.MaxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	own, region := base, base
	own.Durable, own.FilterSubject, own.MaxAckPending = agentConsumer(a.cfg.Name), a.names.workAgent(a.cfg.Name), 2*a.cfg.InFlight
	own.Description = "work addressed to agent " + a.cfg.Name
	region.Durable, region.FilterSubject, region.MaxAckPending = regionConsumer(a.cfg.Region), a.names.workRegion(a.cfg.Region), a.cfg.RegionMaxAckPending
	region.Description = "work shared by the agents of region " + a.cfg.Region
	return []jetstream.ConsumerConfig{own, region}
}

// fetchWait is how long one pull request waits for work.
const fetchWait = 2 * time.Second

// pull takes items from one consumer and hands them to the workers. It
// asks for as many items as there are free slots, without waiting; when
// the consumer has none, it waits for one holding no slot, so that a
// consumer with nothing to do never keeps the other's items from the
// workers (with one slot, it held it through every wait). At most one
// item per consumer is held beyond the slots, while it waits for one.
func (a *Agent) pull(ctx context.Context, js jetstream.JetStream, cc jetstream.ConsumerConfig, work chan<- jetstream.Msg, slots chan struct{}) {
	var cons jetstream.Consumer
	fails := 0
	pause := func(err error) {
		fails++
		if fails == 1 || fails%30 == 0 {
			a.log.Warn("agent: pulling work", "consumer", cc.Durable, "err", err)
		}
		sleep(ctx, backoff(fails, 100*time.Millisecond, 10*time.Second))
	}
	// failed handles an error of a fetch: true when the loop must start over.
	failed := func(err error) bool {
		if err == nil || ctx.Err() != nil || isTimeout(err) {
			return false
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			cons = nil
		}
		pause(err)
		return true
	}
	for ctx.Err() == nil {
		if cons == nil {
			c, err := js.CreateOrUpdateConsumer(ctx, a.names.workStream(), cc)
			if err != nil {
				pause(err)
				continue
			}
			cons = c
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < a.cfg.InFlight {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		batch, err := cons.FetchNoWait(n)
		if err != nil {
			release(slots, n)
			failed(err)
			continue
		}
		got := 0
		for m := range batch.Messages() {
			select {
			case work <- m:
				got++
			case <-ctx.Done():
			}
		}
		release(slots, n-got)
		if failed(batch.Error()) {
			continue
		}
		if got > 0 {
			fails = 0
			continue
		}
		// Nothing waiting: wait for an item holding no slot.
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err = cons.Fetch(1, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			failed(err)
			continue
		}
		for m := range batch.Messages() {
			m.InProgress() // it may wait for a slot: not handed out again meanwhile
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				continue // given up: redelivered after its ack wait
			}
			select {
			case work <- m:
			case <-ctx.Done():
				<-slots
			}
		}
		cancel()
		if failed(batch.Error()) {
			continue
		}
		fails = 0
	}
}

func release(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// handle measures one item and acknowledges it once its observations are
// kept. An item given up because the agent stops is not acknowledged.
func (a *Agent) handle(ctx context.Context, m jetstream.Msg, pub *Publisher) {
	a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		a.redelivered.Add(1)
	}
	var w Work
	if err := json.Unmarshal(m.Data(), &w); err != nil || w.Domain == "" {
		a.log.Warn("agent: dropping a malformed work item", "subject", m.Subject(), "err", err)
		m.Term()
		return
	}
	if !w.Expires.IsZero() && a.cfg.Now().After(w.Expires) {
		a.expired.Add(1)
		m.Ack()
		return
	}
	stop := keepAlive(ctx, m, a.cfg.AckWait/3)
	probes := a.measure(ctx, w)
	stop()
	if ctx.Err() != nil {
		return // stopping: what was measured half-way is no evidence
	}
	if err := pub.WriteAllTo(ctx, w.subject(a.names, a.cfg.Name), probes); err != nil {
		a.failed.Add(1)
		a.log.Warn("agent: keeping observations failed; giving the item back", "domain", w.Domain, "err", err)
		m.NakWithDelay(a.cfg.AckWait / 2)
		return
	}
	if ctx.Err() != nil {
		return
	}
	if err := m.Ack(); err != nil {
		a.log.Debug("agent: acknowledging work", "domain", w.Domain, "err", err)
	}
	a.done.Add(1)
	a.probeCount.Add(int64(len(probes)))
}

// keepAlive tells JetStream every period that m is being worked on, until
// the returned function is called.
func keepAlive(ctx context.Context, m jetstream.Msg, period time.Duration) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(max(period, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				m.InProgress()
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { close(done) }
}

// measure probes the item's domain through every vantage at once (each
// vantage's bucket paces its own queries), but those that rest: as in a
// local crawl, a dead vantage is skipped, not asked.
func (a *Agent) measure(ctx context.Context, w Work) []obs.Probe {
	round := a.rounds.get(w.Round)
	probes := make([]obs.Probe, len(a.cfg.Vantages))
	measured := make([]bool, len(a.cfg.Vantages))
	var wg sync.WaitGroup
	for i, v := range a.cfg.Vantages {
		wg.Go(func() {
			p, ok := a.vantages.Probe(ctx, &a.crawler, w.Domain, v.Addr, round)
			if !ok {
				return
			}
			measured[i] = true
			label := a.cfg.VantageLabel + "/" + v.Addr
			p.Vantage = label
			for j := range p.Observations {
				p.Observations[j].Vantage = label
			}
			probes[i] = p
		})
	}
	wg.Wait()
	out := probes[:0]
	for i, p := range probes {
		if measured[i] {
			out = append(out, p)
		}
	}
	return out
}

// Heartbeat returns what the agent's next heartbeat says.
func (a *Agent) Heartbeat() Heartbeat {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.heartbeatLocked()
}

func (a *Agent) heartbeatLocked() Heartbeat {
	h := Heartbeat{
		Agent: a.cfg.Name, Region: a.cfg.Region, Started: a.started, Time: a.cfg.Now(),
		InFlight: int(a.inFlight.Load()), WorkDone: a.done.Load(), WorkFailed: a.failed.Load(), WorkExpired: a.expired.Load(),
		WorkRedelivered: a.redelivered.Load(),
		Probes:          a.probeCount.Load(), Queries: a.counts.sent.Load(), Answered: a.counts.answered.Load(), Errors: a.counts.errors(),
		ProbesPerSecond: a.lastRates[0], QueriesPerSecond: a.lastRates[1],
	}
	for _, v := range a.cfg.Vantages {
		h.Vantages = append(h.Vantages, v.Addr)
	}
	h.VantageHealth = a.vantages.Health()
	if a.pub != nil {
		h.Published, h.PublishErrors = a.pub.published.Load(), a.pub.failed.Load()
	}
	st := a.boxAtEnd
	if a.box != nil {
		if now, err := a.box.Stats(); err == nil {
			st = now
		}
	}
	h.OutboxPending, h.OutboxBytes, h.OutboxDropped = st.Pending, st.Bytes, st.Dropped
	return h
}

// heartbeats publishes a heartbeat at once and then every interval.
func (a *Agent) heartbeats(ctx context.Context, nc *nats.Conn) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		a.mu.Lock()
		now := time.Now()
		if secs := now.Sub(a.rateAt).Seconds(); secs > 0 {
			p, q := a.probeCount.Load(), a.counts.sent.Load()
			a.lastRates = [2]float64{float64(p-a.rateProbes) / secs, float64(q-a.rateQueries) / secs}
			a.rateAt, a.rateProbes, a.rateQueries = now, p, q
		}
		h := a.heartbeatLocked()
		a.mu.Unlock()
		if b, err := json.Marshal(h); err == nil {
			if err := nc.Publish(a.names.heartbeat(a.cfg.Name), b); err != nil && ctx.Err() == nil {
				a.log.Debug("agent: heartbeat", "err", err)
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// roundCache keeps the name server lookups of the last few rounds, so a
// name server shared by many domains is asked once per vantage and round.
type roundCache struct {
	mu     sync.Mutex
	ids    []int64
	rounds map[int64]*crawler.Round
}

// keepRounds is how many rounds' lookups are kept.
const keepRounds = 4

func (c *roundCache) get(id int64) *crawler.Round {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.rounds[id]; ok {
		return r
	}
	if c.rounds == nil {
		c.rounds = map[int64]*crawler.Round{}
	}
	r := crawler.NewRound()
	c.rounds[id] = r
	c.ids = append(c.ids, id)
	if len(c.ids) > keepRounds {
		delete(c.rounds, c.ids[0])
		c.ids = slices.Delete(c.ids, 0, 1)
	}
	return r
}
