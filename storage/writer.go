package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// WriterOptions tune a Writer. The zero value gives sensible defaults.
type WriterOptions struct {
	// MaxBatch is the number of probes after which a transaction is
	// committed (default 5000). Up to four batches wait in a queue while one
	// commits, so that measuring does not stop for the disk. A commit
	// rewrites every page it touches while the old copies still count, so
	// the file grows by the pages a commit touches: batches of 10,000 probes
	// of a 50,000-domain round left a file 8 % larger for the same data,
	// and batches of 2,500 cost more CPU per probe.
	MaxBatch int
	// MaxDelay is the longest a probe waits in the buffer (default 1s).
	MaxDelay time.Duration
	// OnCommit, if set, is called after each committed transaction with the
	// running totals of probes and observations committed.
	OnCommit func(probes, observations int64)
	// OnTx, if set, is called after each transaction, committed or not,
	// with the time it took.
	OnTx func(time.Duration)
}

// Writer buffers probes from many goroutines and stores them in large
// transactions. A probe counts as committed once the transaction that holds
// it has returned; Committed reports those counts.
type Writer struct {
	s     *Store
	opts  WriterOptions
	in    chan obs.Probe
	flush chan chan error
	done  chan struct{}

	mu  sync.Mutex
	err error

	probes, observations atomic.Int64
}

// NewWriter starts a writer. Close it to flush what is buffered.
func (s *Store) NewWriter(opts WriterOptions) *Writer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 5000
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Second
	}
	w := &Writer{s: s, opts: opts, in: make(chan obs.Probe, 4*opts.MaxBatch), flush: make(chan chan error), done: make(chan struct{})}
	go w.run()
	return w
}

// errWriterClosed is returned by Write after Close.
var errWriterClosed = errors.New("storage writer closed")

// Write queues a probe. It blocks while the buffer is full and returns the
// error of an earlier failed commit, after which nothing more is stored.
func (w *Writer) Write(ctx context.Context, p obs.Probe) error {
	if err := w.Err(); err != nil {
		return err
	}
	select {
	case w.in <- p: // room in the queue: the common case, without a full select
		return nil
	default:
	}
	select {
	case w.in <- p:
		return nil
	case <-w.done:
		if err := w.Err(); err != nil {
			return err
		}
		return errWriterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err returns the first commit error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Committed returns how many probes and observations have been committed.
func (w *Writer) Committed() (probes, observations int64) {
	return w.probes.Load(), w.observations.Load()
}

// Flush commits every probe written before it and returns the first commit
// error, if any.
func (w *Writer) Flush() error {
	reply := make(chan error, 1)
	select {
	case w.flush <- reply:
		return <-reply
	case <-w.done:
		return w.Err()
	}
}

// Close stops accepting probes, commits what is buffered and returns the
// first commit error. Write must not be called concurrently with Close.
func (w *Writer) Close() error {
	close(w.in)
	<-w.done
	return w.Err()
}

// A writer that took fewer than gatherBelow probes on waking waits
// gatherDelay before it looks again, so that at high rates it wakes about
// once per gatherDelay instead of once per probe.
const (
	gatherBelow = 64
	gatherDelay = time.Millisecond
)

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]obs.Probe, 0, w.opts.MaxBatch)
	timer := time.NewTimer(w.opts.MaxDelay)
	defer timer.Stop()
	commits := 0
	flush := func() {
		if len(batch) == 0 || w.Err() != nil {
			batch = batch[:0]
			return
		}
		start := time.Now()
		n, err := w.s.WriteProbes(batch)
		if w.opts.OnTx != nil {
			w.opts.OnTx(time.Since(start))
		}
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		} else {
			p, o := w.probes.Add(int64(len(batch))), w.observations.Add(int64(n))
			if commits++; commits%256 == 0 {
				w.s.ReleaseMemory() // best effort, see ReleaseMemory
			}
			if w.opts.OnCommit != nil {
				w.opts.OnCommit(p, o)
			}
		}
		clear(batch)
		batch = batch[:0]
	}
	for {
		select {
		case p, ok := <-w.in:
			// Take what else is queued without going round the select,
			// up to a batch, so that timer and Flush still get their turn.
			for n := 1; ; n++ {
				if !ok {
					flush()
					return
				}
				batch = append(batch, p)
				if len(batch) >= w.opts.MaxBatch {
					flush()
				}
				if n == w.opts.MaxBatch || len(w.in) == 0 {
					// Few were queued: rather than wake for each of the
					// next (a wake-up per probe was 4 % of a fast
					// crawl's CPU), give the producers a moment to
					// queue more. Idle, the writer waits in the select.
					if n < gatherBelow && len(batch) > 0 {
						time.Sleep(gatherDelay)
					}
					break
				}
				p, ok = <-w.in // there is one, or the channel is closed
			}
		case <-timer.C:
			flush()
			timer.Reset(w.opts.MaxDelay)
		case reply := <-w.flush:
			// Probes queued before the request are in the channel: take them.
			for drained := false; !drained; {
				select {
				case p, ok := <-w.in:
					if !ok {
						drained = true
						break
					}
					batch = append(batch, p)
				default:
					drained = true
				}
			}
			flush()
			reply <- w.Err()
		}
	}
}
