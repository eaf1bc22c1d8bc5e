// Package scheduler decides what is measured when, and how fast. A round
// measures a list of domains through every vantage: each vantage has its own
// bounded pool of workers and its own token bucket, so a slow or dead
// vantage holds up only its own share of the work. After a round each domain
// is given a next-due time just after the TTL it was answered with, clamped
// between a minimum and a maximum interval, so that rotation is seen.
package scheduler

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Vantage is one resolver to measure through.
type Vantage struct {
	Addr string  // host:port
	QPS  float64 // queries per second; 0: Options.QPS
}

// Options configure a Scheduler.
type Options struct {
	Vantages []Vantage
	// QPS is the per-vantage limit for vantages that set none; 0 or less
	// lifts the limit (for one's own servers only).
	QPS float64
	// Burst is the token bucket size per vantage; 0: a tenth of a second's worth.
	Burst int
	// GlobalQPS caps all vantages together; 0: no cap.
	GlobalQPS float64
	// Workers is the number of probes in flight per vantage (default 8).
	Workers int
	// MinInterval and MaxInterval clamp the time between two measurements of
	// a domain (defaults 1m and 1h).
	MinInterval, MaxInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Observer, if set, is told about every query (metrics).
	Observer Observer
}

// Scheduler runs crawl rounds. It is safe for concurrent use, but rounds
// that overlap share the vantages' rate limits.
type Scheduler struct {
	opts    Options
	crawler *crawler.Crawler
	store   *storage.Store
	log     *slog.Logger
	health  map[string]*health // one per configured vantage, made up front
	tally   *tally             // queries as they leave
}

// New returns a scheduler that measures with q (wrapped in the configured
// rate limits) and stores through store.
func New(q crawler.Querier, c crawler.Crawler, store *storage.Store, opts Options) *Scheduler {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = time.Minute
	}
	if opts.MaxInterval < opts.MinInterval {
		opts.MaxInterval = max(time.Hour, opts.MinInterval)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &tally{}
	c.Querier = newLimitedQuerier(q, opts.Vantages, opts.QPS, opts.Burst, opts.GlobalQPS, t, opts.Observer)
	if c.Direct != nil {
		c.Direct = &directQuerier{q: c.Direct, lim: newLimiter(opts.QPS, opts.Burst), tally: t, observer: opts.Observer}
	}
	if c.Now == nil {
		c.Now = opts.Now
	}
	s := &Scheduler{opts: opts, crawler: &c, store: store, log: opts.Logger, health: map[string]*health{}, tally: t}
	for _, v := range opts.Vantages {
		s.health[v.Addr] = &health{}
	}
	return s
}

// Health returns each vantage's health so far.
func (s *Scheduler) Health() map[string]HealthStats {
	out := make(map[string]HealthStats, len(s.health))
	for addr, h := range s.health {
		out[addr] = h.stats()
	}
	return out
}

// Stats describe one or more rounds. Queries are counted as they leave:
// a lookup shared by many probes of a round counts once, though each probe
// stores its observation.
type Stats struct {
	Probes       int                  `json:"probes"`
	QueriesSent  int                  `json:"queries_sent"`
	Answered     int                  `json:"queries_answered"`
	Failed       map[obs.ErrClass]int `json:"-"`
	Observations int64                `json:"observations_stored"`
	Elapsed      time.Duration        `json:"-"`
}

func (s *Stats) add(o Stats) {
	s.Probes += o.Probes
	s.QueriesSent += o.QueriesSent
	s.Answered += o.Answered
	s.Observations += o.Observations
	s.Elapsed += o.Elapsed
	for k, v := range o.Failed {
		if s.Failed == nil {
			s.Failed = map[obs.ErrClass]int{}
		}
		s.Failed[k] += v
	}
}

// Round measures domains through every vantage and hands the probes to w.
// Cancelling ctx stops handing out new work; probes already started finish
// (their queries are bounded by the client's timeouts) and are written, so
// an interrupted round loses nothing it measured. Next-due times are stored
// for the domains measured.
func (s *Scheduler) Round(ctx context.Context, domains []string, w *storage.Writer) (Stats, error) {
	start := time.Now()
	sent := s.tally.snapshot() // rounds that overlap share these counts
	round := crawler.NewRound()
	work := context.WithoutCancel(ctx)
	// ttls[i] is the smallest address TTL any vantage saw for domains[i]:
	// unmeasured until a probe is stored, noTTL (more than any TTL) while
	// no vantage had an address answer.
	const unmeasured, noTTL = math.MaxUint64, math.MaxUint32 + 1
	ttls := make([]uint64, len(domains))
	for i := range ttls {
		ttls[i] = unmeasured
	}
	var (
		mu    sync.Mutex
		st    Stats
		wg    sync.WaitGroup
		wrErr error
	)
	for _, v := range s.opts.Vantages {
		queue := make(chan int, s.opts.Workers)
		wg.Add(1)
		go func() { // feeds this vantage's workers until done or stopped
			defer wg.Done()
			defer close(queue)
			for i := range domains {
				if ctx.Err() != nil {
					return
				}
				queue <- i // the workers take every domain sent
			}
		}()
		for range s.opts.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := s.health[v.Addr]
				for i := range queue {
					if ctx.Err() != nil {
						continue // stopped: what is queued stays due
					}
					if !h.allow(s.opts.Now) {
						continue // resting: the domain stays due
					}
					p := s.crawler.Probe(work, domains[i], v.Addr, round)
					h.record(p, s.opts.Now)
					ttl := uint64(noTTL)
					if t, ok := AddressTTL(p); ok {
						ttl = uint64(t)
					}
					err := w.Write(work, p)
					mu.Lock()
					st.Probes++
					ttls[i] = min(ttls[i], ttl)
					if err != nil && wrErr == nil {
						wrErr = err
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	queries := s.tally.since(sent)
	st.QueriesSent, st.Answered, st.Failed = queries.QueriesSent, queries.Answered, queries.Failed
	st.Elapsed = time.Since(start)
	if wrErr != nil {
		return st, wrErr
	}
	now := s.opts.Now()
	due := make([]storage.Due, 0, len(domains))
	for i, ttl := range ttls {
		switch ttl {
		case unmeasured:
		case noTTL:
			due = append(due, storage.Due{Domain: domains[i], At: now.Add(s.opts.MaxInterval)})
		default:
			due = append(due, storage.Due{Domain: domains[i], At: now.Add(s.interval(uint32(ttl)))})
		}
	}
	return st, s.store.SetNextDue(due)
}

// interval is the wait before the next measurement of a domain answered
// with ttl (see NextInterval).
func (s *Scheduler) interval(ttl uint32) time.Duration {
	return NextInterval(ttl, s.opts.MinInterval, s.opts.MaxInterval)
}

// NextInterval is the wait before the next measurement of a domain
// answered with ttl: just past the TTL, so the next answer is fresh,
// clamped to [lo, hi]. A domain without an address answer waits hi.
func NextInterval(ttl uint32, lo, hi time.Duration) time.Duration {
	return min(max(time.Duration(ttl)*time.Second+time.Second, lo), hi)
}

// AddressTTL is the smallest TTL of the probe's domain's own A/AAAA
// answers, and whether there was one.
func AddressTTL(p obs.Probe) (uint32, bool) {
	var ttl uint32
	found := false
	for _, o := range p.Observations {
		if o.Name != p.Domain || (o.QType != dns.TypeA && o.QType != dns.TypeAAAA) {
			continue
		}
		for _, r := range o.Answer {
			if r.Type == o.QType && (!found || r.TTL < ttl) {
				ttl, found = r.TTL, true
			}
		}
	}
	return ttl, found
}
