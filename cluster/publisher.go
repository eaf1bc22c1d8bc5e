package cluster

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/obs"
)

// Publisher is an agent's Sink: it writes each probe to the outbox, then
// publishes it to the observation stream and deletes it from the outbox
// once JetStream acknowledged it. What is not acknowledged stays in the
// outbox and is sent again every ResendInterval, and by the next Publisher
// on the same outbox after a restart.
type Publisher struct {
	js      jetstream.JetStream
	box     *Outbox
	agent   string
	subject string
	timeout time.Duration
	resend  time.Duration
	log     *slog.Logger
	onPub   func(id string)

	mu       sync.Mutex
	inflight map[uint64]bool // being published now: the resender leaves them alone

	deletes chan uint64

	published, failed atomic.Int64
}

func newPublisher(js jetstream.JetStream, box *Outbox, agent, subject string, timeout, resend time.Duration,
	log *slog.Logger, onPublished func(string)) *Publisher {
	return &Publisher{js: js, box: box, agent: agent, subject: subject, timeout: timeout, resend: resend, log: log,
		onPub: onPublished, inflight: map[uint64]bool{}, deletes: make(chan uint64, 4096)}
}

// Write implements Sink for one probe; see WriteAll.
func (p *Publisher) Write(ctx context.Context, pr obs.Probe) error {
	return p.WriteAll(ctx, []obs.Probe{pr})
}

// WriteAll keeps probes in the outbox (synced to disk) and publishes
// them, waiting up to the publish timeout for JetStream's acknowledgements.
// It returns nil once the probes are safe in the outbox, acknowledged or
// not; an error means they were not kept.
func (p *Publisher) WriteAll(ctx context.Context, probes []obs.Probe) error {
	return p.WriteAllTo(ctx, p.subject, probes)
}

// WriteAllTo is WriteAll to subject: the observation subject of the shard
// that owns the probes' domain.
func (p *Publisher) WriteAllTo(ctx context.Context, subject string, probes []obs.Probe) error {
	entries := make([]OutboxEntry, 0, len(probes))
	for _, pr := range probes {
		m, id, err := encodeObservation(subject, p.agent, pr)
		if err != nil {
			return err
		}
		entries = append(entries, OutboxEntry{ID: id, Subject: m.Subject, Data: m.Data})
	}
	kept, err := p.box.Put(entries)
	if err != nil {
		return err
	}
	p.publish(ctx, kept)
	return nil
}

// publish sends entries and waits for their acknowledgements until the
// timeout; acknowledged entries are queued for deletion from the outbox.
func (p *Publisher) publish(ctx context.Context, entries []OutboxEntry) {
	if len(entries) == 0 {
		return
	}
	p.mu.Lock()
	for _, e := range entries {
		p.inflight[e.Seq] = true
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		for _, e := range entries {
			delete(p.inflight, e.Seq)
		}
		p.mu.Unlock()
	}()
	futures := make([]jetstream.PubAckFuture, len(entries))
	for i, e := range entries {
		m := nats.NewMsg(e.Subject)
		m.Header.Set(nats.MsgIdHdr, e.ID)
		m.Header.Set(headerAgent, p.agent)
		m.Data = e.Data
		f, err := p.js.PublishMsgAsync(m)
		if err != nil {
			p.failed.Add(1)
			p.log.Debug("publishing observation", "id", e.ID, "err", err)
			continue
		}
		futures[i] = f
	}
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			p.published.Add(1)
			if p.onPub != nil {
				p.onPub(entries[i].ID)
			}
			select {
			case p.deletes <- entries[i].Seq:
			case <-ctx.Done():
				return
			}
		case err := <-f.Err():
			p.failed.Add(1)
			p.log.Debug("publishing observation", "id", entries[i].ID, "err", err)
		case <-timer.C:
			// This one and every later one still waiting (the nil ones
			// were counted when they could not be sent).
			p.failed.Add(int64(len(futures) - i - countNil(futures[i+1:])))
			return
		case <-ctx.Done():
			return
		}
	}
}

func countNil(fs []jetstream.PubAckFuture) int {
	n := 0
	for _, f := range fs {
		if f == nil {
			n++
		}
	}
	return n
}

// run deletes acknowledged entries in batches and resends what the outbox
// holds, until ctx is done; the deletions queued by then are made.
func (p *Publisher) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { p.resendLoop(ctx) })
	var batch []uint64
	flush := func() {
		if err := p.box.Delete(batch); err != nil {
			p.log.Warn("outbox", "err", err)
		}
		batch = batch[:0]
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case seq := <-p.deletes:
			if batch = append(batch, seq); len(batch) >= 1024 {
				flush()
			}
		case <-tick.C:
			flush()
		case <-ctx.Done():
			wg.Wait()
			for {
				select {
				case seq := <-p.deletes:
					batch = append(batch, seq)
				default:
					flush()
					return
				}
			}
		}
	}
}

// resendLoop goes through the outbox right away (what a restart left) and
// then every resend interval, publishing what is not being published.
func (p *Publisher) resendLoop(ctx context.Context) {
	for {
		p.resendOnce(ctx)
		select {
		case <-time.After(p.resend):
		case <-ctx.Done():
			return
		}
	}
}

func (p *Publisher) resendOnce(ctx context.Context) {
	var after uint64
	for ctx.Err() == nil {
		batch, err := p.box.Pending(after, 256)
		if err != nil {
			p.log.Warn("outbox", "err", err)
			return
		}
		if len(batch) == 0 {
			return
		}
		after = batch[len(batch)-1].Seq
		p.mu.Lock()
		idle := batch[:0]
		for _, e := range batch {
			if !p.inflight[e.Seq] {
				idle = append(idle, e)
			}
		}
		p.mu.Unlock()
		p.publish(ctx, idle)
	}
}
