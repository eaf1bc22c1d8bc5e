// Package scheduler decides what is measured when, and how fast. A round
// measures a list of domains through every vantage. Each vantage has its
// own token bucket and starts probes as fast as its bucket lets their
// queries out (see vantage.go), so a slow or dead vantage holds up only its
// own share of the work, and slow or dead domains hold up nothing. After a
// round each domain is given a next-due time just after the TTL it was
// answered with, clamped between a minimum and a maximum interval, so that
// rotation is seen; a domain no vantage answers for storage.DarkAfter
// measurements in a row is dark, and waits longer each time, up to
// DarkMaxInterval.
package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// MaxInFlight caps the probes in flight per vantage (default
	// DefaultMaxInFlight); below it, the rate sets how many there are.
	MaxInFlight int
	// Workers, if set, fixes the probes in flight per vantage, whatever
	// the rate: an override for experiments. 0: paced by the rate.
	Workers int
	// Retries is the number of extra attempts of a query that timed out,
	// made only while its vantage answers other queries (default 1;
	// negative: none). The Querier given to New should not retry itself.
	Retries int
	// Canary is the name (asked for its SOA) that decides whether a
	// vantage that stopped answering is down; "" means DefaultCanary.
	Canary string
	// MinInterval and MaxInterval clamp the time between two measurements of
	// a domain (defaults 1m and 1h).
	MinInterval, MaxInterval time.Duration
	// DarkMaxInterval caps the wait of a dark domain (default
	// DefaultDarkMaxInterval).
	DarkMaxInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Observer, if set, is told about every query (metrics).
	Observer Observer
}

// Scheduler runs crawl rounds. It is safe for concurrent use, but rounds
// that overlap share the vantages' rate limits.
type Scheduler struct {
	opts     Options
	crawler  *crawler.Crawler
	store    *storage.Store
	log      *slog.Logger
	vantages []*vantage      // one per configured vantage, in order, made up front
	lq       *limitedQuerier // the crawler's query path; judges the vantages' health
	tally    *tally          // queries as they leave
}

// New returns a scheduler that measures with q (wrapped in the configured
// rate limits) and stores through store.
func New(q crawler.Querier, c crawler.Crawler, store *storage.Store, opts Options) *Scheduler {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.Workers > 0 {
		opts.MaxInFlight = opts.Workers
	}
	if opts.Canary == "" {
		opts.Canary = DefaultCanary
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = time.Minute
	}
	if opts.MaxInterval < opts.MinInterval {
		opts.MaxInterval = max(time.Hour, opts.MinInterval)
	}
	if opts.DarkMaxInterval < opts.MaxInterval {
		opts.DarkMaxInterval = max(DefaultDarkMaxInterval, opts.MaxInterval)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &tally{}
	window := DefaultWindow
	if opts.Workers > 0 {
		// Workers fixes the probes in flight; the window of queries
		// then only bounds a probe's fan-out (its types, referral and
		// name servers' addresses).
		window = opts.Workers * maxProbeFanOut
	}
	lq := newLimitedQuerier(q, opts, window, t)
	c.Querier = lq
	if c.Direct != nil {
		c.Direct = &directQuerier{q: c.Direct, lim: newLimiter(opts.QPS, opts.Burst), tally: t, observer: opts.Observer}
	}
	if c.Now == nil {
		c.Now = opts.Now
	}
	s := &Scheduler{opts: opts, crawler: &c, store: store, log: opts.Logger, tally: t, lq: lq}
	for _, v := range opts.Vantages {
		s.vantages = append(s.vantages, lq.vantages[v.Addr])
	}
	return s
}

// Health returns each vantage's health so far.
func (s *Scheduler) Health() map[string]HealthStats {
	out := make(map[string]HealthStats, len(s.vantages))
	for _, v := range s.vantages {
		out[v.addr] = v.health.stats()
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
// an interrupted round loses nothing it measured. Next-due times and dark
// counts are stored for the domains measured.
func (s *Scheduler) Round(ctx context.Context, domains []string, w *storage.Writer) (Stats, error) {
	start := time.Now()
	sent := s.tally.snapshot() // rounds that overlap share these counts
	r := &round{
		s: s, domains: domains, w: w, stop: ctx,
		work:  context.WithoutCancel(ctx),
		cache: crawler.NewRound(), fanOut: int64(len(crawler.DefaultQTypes)),
		outcomes: make([]Outcome, len(domains)),
	}
	if qt := s.crawler.QTypes; qt != nil {
		r.fanOut = int64(max(len(qt), 1))
	}
	var wg sync.WaitGroup
	for _, v := range s.vantages {
		wg.Go(func() { r.dispatch(v) })
	}
	wg.Wait()
	for _, v := range s.vantages {
		if v.win != nil {
			v.win.mu.Lock()
			s.log.Debug("vantage window", "vantage", v.addr, "queries_in_flight", v.win.size(), "fastest_rtt", v.win.base)
			v.win.mu.Unlock()
		}
	}
	st := r.st
	queries := s.tally.since(sent)
	st.QueriesSent, st.Answered, st.Failed = queries.QueriesSent, queries.Answered, queries.Failed
	st.Elapsed = time.Since(start)
	if r.wrErr != nil {
		return st, r.wrErr
	}
	// The dark counts of the domains no vantage answered, read once the
	// round is over: only they need them.
	var silent []string
	for i, o := range r.outcomes {
		if o.Measured() && !o.Answered() {
			silent = append(silent, domains[i])
		}
	}
	dark, err := s.store.DarkCounts(silent)
	if err != nil {
		return st, err
	}
	now := s.opts.Now()
	iv := Intervals{s.opts.MinInterval, s.opts.MaxInterval, s.opts.DarkMaxInterval}
	measured := make([]storage.Measured, 0, len(domains))
	for i, o := range r.outcomes {
		if !o.Measured() {
			continue
		}
		var n int
		if !o.Answered() {
			n, dark = dark[0]+1, dark[1:]
		}
		measured = append(measured, o.Next(domains[i], n, now, iv))
	}
	return st, s.store.SetMeasured(measured)
}

// round is one Round's shared state.
type round struct {
	s       *Scheduler
	domains []string
	w       *storage.Writer
	stop    context.Context // cancelled: start no more probes
	work    context.Context // never cancelled: probes already started finish
	cache   *crawler.Round
	fanOut  int64 // the queries a probe sends at once: one per type

	mu       sync.Mutex
	st       Stats
	outcomes []Outcome // by domain, under mu
	wrErr    error
}

// dispatch measures every domain through v: it starts a probe whenever v
// has room for one (see vantage.go), on a pool of workers that grows as
// needed up to the in-flight cap. A worker whose probe ends goes on with
// the next domain itself when v has room for it, so that a busy vantage
// does not wake the dispatcher once per probe; the dispatcher starts the
// probes that room opened otherwise (a window that grew, tokens that came).
func (r *round) dispatch(v *vantage) {
	var (
		inFlight atomic.Int64
		next     atomic.Int64             // index of the next domain to start
		done     = make(chan struct{}, 1) // a probe finished
		jobs     = make(chan int, 64)     // admitted probes, for the workers
		idle     atomic.Int64             // workers waiting for a job
		workers  int
		wg       sync.WaitGroup
	)
	defer func() {
		close(jobs)
		wg.Wait()
	}()
	limit := int64(r.s.opts.MaxInFlight)
	// queued says whether v has room for another probe's first queries.
	queued := func() bool {
		if v.paced {
			return v.waiting.Load() < v.maxWaiting
		}
		return v.outstanding.Load() < v.win.size()
	}
	room := func() bool { return inFlight.Load() < limit && queued() }
	// admit takes the next domain and readies v for its probe: false when
	// none is left. skipped is true when v rests and the domain stays due.
	admit := func() (i int, skipped, ok bool) {
		i = int(next.Add(1) - 1)
		if i >= len(r.domains) {
			return 0, false, false
		}
		if !r.s.lq.admit(r.work, v) {
			return i, true, true
		}
		// Counted as its first queries waiting (or, without a rate,
		// outstanding) until its worker starts it, so that probes not
		// yet begun are not taken for room.
		if v.paced {
			v.waiting.Add(r.fanOut)
		} else {
			v.outstanding.Add(r.fanOut)
		}
		return i, false, true
	}
	// A safety net for rounds that overlap on one vantage and take each
	// other's wake-ups: look again now and then without one.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	worker := func(i int) {
		defer wg.Done()
		for {
			r.measure(v, i)
			// Its slot is free: go on with the next domain at once if
			// v has room for it (a probe ends, another begins).
			var skipped, ok bool
			if r.stop.Err() == nil && queued() {
				i, skipped, ok = admit()
			}
			if ok && !skipped {
				continue
			}
			inFlight.Add(-1)
			signal(done)
			idle.Add(1)
			i, ok = <-jobs
			idle.Add(-1)
			if !ok {
				return
			}
		}
	}
	for r.stop.Err() == nil {
		for !room() {
			select {
			case <-done:
			case <-v.wake:
			case <-tick.C:
			case <-r.stop.Done():
				return
			}
		}
		// Admitted after the wait: a probe that just finished may have
		// rested the vantage. (The probe asks again when it starts.)
		i, skipped, ok := admit()
		if !ok {
			return
		}
		if skipped {
			continue // resting: the domain stays due
		}
		inFlight.Add(1)
		// A job goes to the queue when a waiting worker will take it,
		// else to a new worker, up to the cap.
		if idle.Load() > int64(len(jobs)) || workers >= r.s.opts.MaxInFlight {
			jobs <- i
		} else {
			workers++
			wg.Add(1)
			go worker(i)
		}
	}
}

// measure probes one domain through v and writes the probe.
func (r *round) measure(v *vantage, i int) {
	if v.paced {
		v.waiting.Add(-r.fanOut)
	} else {
		v.outstanding.Add(-r.fanOut)
	}
	if r.stop.Err() != nil {
		return // stopped while it waited in the queue: it stays due
	}
	domain := r.domains[i]
	p, ok := r.s.lq.probe(r.work, v, func() obs.Probe {
		return r.s.crawler.Probe(r.work, domain, v.addr, r.cache)
	})
	if !ok {
		return // rested since it was started: the domain stays due
	}
	err := r.w.Write(r.work, p)
	r.mu.Lock()
	r.st.Probes++
	r.outcomes[i].Add(p)
	if err != nil && r.wrErr == nil {
		r.wrErr = err
	}
	r.mu.Unlock()
}

// NextInterval is the wait before the next measurement of a domain
// answered with ttl: just past the TTL, so the next answer is fresh,
// clamped to [lo, hi]. A domain without an address answer waits hi.
func NextInterval(ttl uint32, lo, hi time.Duration) time.Duration {
	return min(max(time.Duration(ttl)*time.Second+time.Second, lo), hi)
}

// maxProbeFanOut is about the most queries one probe has out at once.
const maxProbeFanOut = 16

// Dark domains: after storage.DarkAfter measurements in a row in which no
// vantage answered for the name, each further one waits twice as long as
// the one before, from twice MaxInterval up to DarkMaxInterval (24 h by
// default), so that a seed list of mostly dead names costs little; the
// first answer from any vantage puts the domain back on its TTL's cadence.
// An answer is a NOERROR response for the name itself, with or without
// records: NXDOMAIN, SERVFAIL and silence are not.
const DefaultDarkMaxInterval = 24 * time.Hour

// DarkInterval is the wait before measuring again a domain no vantage
// answered dark times in a row: hi until it is dark (storage.DarkAfter),
// then doubling, capped at darkMax.
func DarkInterval(dark int, hi, darkMax time.Duration) time.Duration {
	d := hi
	for n := storage.DarkAfter; n <= dark && d < darkMax; n++ {
		d *= 2
	}
	return min(d, max(darkMax, hi))
}

// Answered reports whether any query for the probe's domain itself got a
// NOERROR response from the vantage (with or without records).
func Answered(p obs.Probe) bool {
	for _, o := range p.Observations {
		if o.Name == p.Domain && o.Flags&obs.FlagDelegation == 0 && o.Err == obs.OK {
			return true
		}
	}
	return false
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
