// Package daemon runs fluxwatch's jobs on their cron schedules: crawl the
// due domains (or hand them to remote agents), classify, publish the
// exports, prune old observations and import new seeds. Each job has its
// file, with its setup and its metrics: crawl.go, classify.go, publish.go,
// prune.go and seeds.go. Beside them the daemon serves what
// daemon.serve configures (feed.go: the RPZ zone and the export files;
// http.go: status, metrics, the write API and the web view) and keeps
// its status (status.go).
//
// The command opens the database, hands it to New, lends it to other
// commands through the control socket (Exclusive and Status are what it
// lends) and calls Run until a signal stops it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/metrics"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/storage"
	"github.com/fluxwatch/fluxwatch/web"
)

// ErrUsage marks errors of a configuration the daemon cannot run (the
// command line or the file is wrong, not the world): the command exits
// with status 2 for them.
var ErrUsage = errors.New("usage")

// Store is what the daemon itself asks of the database. (The scheduler,
// the classifier, the web view and the exports take the whole
// *storage.Store, which Options.DB lends them.)
type Store interface {
	// AddDomains adds seed names from source.
	AddDomains(names []string, source string, now time.Time) (storage.AddResult, error)
	// Due returns the active domains due by now.
	Due(now time.Time) ([]string, error)
	// CountDomains counts the active and the dark domains.
	CountDomains() (storage.DomainCounts, error)
	// Prune deletes the probes older than cutoff, perTx a transaction.
	Prune(cutoff time.Time, perTx int) (int, error)
	// RecordPublishOf records a publish of the listed domains.
	RecordPublishOf(at time.Time, kind string) (storage.PublishRecord, error)
	// NewWriter returns a writer of observations in large transactions.
	NewWriter(opts storage.WriterOptions) *storage.Writer
}

var _ Store = (*storage.Store)(nil)

// Options are what the daemon runs on besides its configuration.
type Options struct {
	// DB is the open database; the daemon does not close it.
	DB *storage.Store
	// Logger is where the daemon logs; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock of the jobs; nil: time.Now. (Tests run the daemon
	// on a simulated world's accelerated clock.)
	Now func() time.Time
	// Reload loads the configuration again, on SIGHUP; nil: SIGHUP is
	// not watched.
	Reload func() (*config.Config, error)
	// ConfigPath names the configuration file in the reload's log line.
	ConfigPath string
}

// Daemon is the running daemon: what stays across reloads (the database,
// the writer, the listeners, metrics, status) and the state one
// configuration builds.
type Daemon struct {
	db      *storage.Store
	store   Store
	writer  *storage.Writer
	log     *slog.Logger
	now     func() time.Time
	reload  func() (*config.Config, error)
	cfgPath string
	metrics *metrics.Metrics
	status  *status
	serving *feedServers
	coord   *cluster.Coordinator // nil: measure locally
	// stopFeed ends feedCtx, the context of shardFeed and of the network
	// builder's watch, which feedDone waits for.
	feedCtx  context.Context
	stopFeed context.CancelFunc
	feedDone sync.WaitGroup
	// nets builds a shard's flux networks with the other shards'
	// (NetworkBuilder); made once connected.
	netsMu sync.Mutex
	nets   *cluster.ShardNetworks
	// moved says domains moved to or from the shard: shardFeed publishes.
	moved chan struct{}

	current atomic.Pointer[state]
	web     atomic.Pointer[http.Handler]

	// The list is published whole: classifyMu is held by a classification
	// for all of its run (it stores its verdicts a batch at a time) and
	// listMu by a delisting or relisting; a publish holds both, so the
	// files it writes and the publish record all hold one list.
	classifyMu, listMu sync.Mutex
	// classified is closed when the first classification since start has
	// ended: the first scheduled publish waits for it.
	classified    chan struct{}
	firstClassify sync.Once
}

// state is what one configuration builds.
type state struct {
	cfg        *config.Config
	sched      *scheduler.Scheduler
	vantages   []scheduler.Vantage
	release    func()
	classifier *classify.Classifier
}

func (d *Daemon) state() *state { return d.current.Load() }

// New builds everything cfg's jobs need, starts the listeners of
// daemon.serve and the coordinator of daemon.nats, and publishes the
// stored list; the jobs start with Run. A daemon that cannot load a
// table, read a seed file or write an export does not start, rather than
// run half-configured. Close releases what New started.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *Daemon, err error) {
	d := &Daemon{db: opts.DB, store: opts.DB, log: opts.Logger, now: opts.Now, reload: opts.Reload, cfgPath: opts.ConfigPath,
		metrics: metrics.New(cfg.DB), status: newStatus(cfg.DB), classified: make(chan struct{}),
		moved: make(chan struct{}, 1)}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.now == nil {
		d.now = time.Now
	}
	if err := d.newCoordinator(cfg); err != nil {
		return nil, err
	}
	st, err := d.build(cfg)
	if err != nil {
		return nil, err
	}
	d.current.Store(st)
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	// status says what is stored until the first classification says more.
	if counts, domains, err := StoredCounts(d.db); err == nil {
		d.status.classified(counts)
		d.status.domains(domains)
	} else {
		d.log.Warn("start: counting the stored verdicts", "err", err)
	}
	app, err := d.httpApp(cfg)
	if err != nil {
		return nil, err
	}
	if d.serving, err = startFeed(cfg, d.log, app); err != nil {
		return nil, err
	}
	if d.serving.dns != nil {
		d.metrics.FeedFrom(d.serving.dns.Stats)
	}
	// Before any job runs, every export is written from the list as
	// stored and the zone served from it, with a NOTIFY (the listeners
	// serve the last run's files until then, so a secondary that asks in
	// between gets what it had, and an IXFR from it gets the differences).
	// A publish that fails here leaves the last run's files served.
	//
	// A shard of a sharded cluster waits for NATS instead: its list, and
	// the publisher's merged feed, are published once it is connected
	// (shardFeed).
	if d.sharded(cfg) {
		d.log.Info("start: a shard publishes once connected to NATS; serving the files of the last run until then")
	} else if err := d.publish(ctx, cfg, storage.PublishStart); err != nil {
		d.log.Error("publishing the stored list at start failed; serving the files of the last run", "err", err)
	}
	d.writer = d.store.NewWriter(storage.WriterOptions{
		OnCommit: func(p, o int64) {
			d.log.Debug("committed", "probes", p, "observations", o)
		},
		OnTx: d.metrics.Transaction,
	})
	if err := d.startCoordinator(ctx, cfg); err != nil {
		return nil, err
	}
	d.metrics.CommittedFrom(d.writer.Committed)
	return d, nil
}

// Close stops the coordinator and the listeners and releases the query
// engine. Run has committed the observations by then.
func (d *Daemon) Close() {
	if d.stopFeed != nil {
		d.stopFeed()
		d.feedDone.Wait()
	}
	if d.coord != nil {
		d.coord.Close()
	}
	d.serving.close()
	if st := d.state(); st != nil {
		st.release()
	}
}

// Now is the daemon's clock.
func (d *Daemon) Now() time.Time { return d.now() }

// Status returns the daemon's status as of now.
func (d *Daemon) Status() Status { return d.status.snapshot(d.now()) }

// Exclusive is the daemon's lock for a job a command runs through the
// control socket: a classification is one of the daemon's own (it counts
// as the first one for the first publish, and status shows its counts),
// and a listing edit never falls in the middle of a publish.
func (d *Daemon) Exclusive(job string) (unlock func(), err error) {
	switch job {
	case "classify":
		d.classifyMu.Lock()
		return func() {
			if counts, domains, err := StoredCounts(d.db); err == nil {
				d.status.classified(counts)
				d.status.domains(domains)
			}
			d.firstClassify.Do(func() { close(d.classified) })
			d.classifyMu.Unlock()
		}, nil
	case "list":
		d.listMu.Lock()
		return d.listMu.Unlock, nil
	}
	return nil, fmt.Errorf("the daemon has no job %q", job)
}

// Run runs the jobs until ctx ends, then lets the running ones finish and
// commits what they measured. On SIGHUP it reloads: a configuration that
// does not load or build changes nothing; otherwise the jobs stop
// (running ones finish), the new settings take over and the jobs start
// again.
func (d *Daemon) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	if d.reload != nil {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	js, err := d.startJobs(ctx)
	if err != nil {
		return err
	}
	st := d.state()
	cfg := st.cfg
	d.log.Info("daemon started", "db", cfg.DB, "vantages", len(st.vantages), "crawl", cfg.Daemon.Crawl,
		"classify", cfg.Daemon.Classify, "publish", cfg.Daemon.Publish, "prune", cfg.Daemon.Prune,
		"seeds", cfg.Daemon.Seeds, "exports", len(cfg.Daemon.Exports))
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-hup:
			next, err := d.reload()
			if err == nil {
				var nst *state
				if nst, err = d.build(next); err == nil {
					js.stop()
					old := d.state()
					d.current.Store(nst)
					old.release()
					if js, err = d.startJobs(ctx); err != nil {
						return err
					}
					if !reflect.DeepEqual(next.Daemon.Serve, old.cfg.Daemon.Serve) {
						d.log.Warn("reload: daemon.serve changes need a restart; the listeners stay as they were")
					}
					if !reflect.DeepEqual(next.Daemon.NATS, old.cfg.Daemon.NATS) {
						d.log.Warn("reload: daemon.nats changes need a restart; the coordinator stays as it was")
					}
					d.log.Info("reloaded", "config", d.cfgPath, "vantages", len(nst.vantages), "exports", len(next.Daemon.Exports))
					continue
				}
			}
			d.log.Error("reload failed; the running configuration stays", "err", err)
		}
	}
	d.log.Info("daemon stopping: finishing running jobs")
	js.stop()
	if err := d.writer.Close(); err != nil {
		return fmt.Errorf("committing observations: %w", err)
	}
	probes, observations := d.writer.Committed()
	d.status.stopped(d.now())
	d.log.Info("daemon stopped", "probes", probes, "observations", observations)
	return nil
}

// build makes the scheduler and classifier of cfg, checks that every export
// can be written and imports the configured seed files. It writes nothing
// to the store unless everything else succeeded: a reload that fails
// changes nothing.
func (d *Daemon) build(cfg *config.Config) (*state, error) {
	if err := checkExports(cfg); err != nil {
		return nil, err
	}
	seedFiles, err := d.readSeedFiles(cfg)
	if err != nil {
		return nil, err
	}
	c, err := classify.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	sched, vantages, release, err := scheduler.FromConfig(cfg, d.db, d.now, d.log, d.metrics)
	if err != nil {
		return nil, err
	}
	for _, sf := range seedFiles {
		if err := d.addSeeds(sf, false); err != nil {
			release()
			return nil, fmt.Errorf("daemon.seed_files: %w", err)
		}
	}
	var exports []web.Export
	for _, e := range cfg.Daemon.Exports {
		exports = append(exports, web.Export{Format: e.Format, Path: e.Out})
	}
	view := web.New(d.db, c.Meta, web.Options{Exports: exports, Logger: d.log})
	d.web.Store(&view)
	return &state{cfg: cfg, sched: sched, vantages: vantages, release: release, classifier: c}, nil
}

// writableDir checks that dir is a directory fluxwatch can create files in.
func writableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".fluxwatch-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// jobs are the jobs of one configuration, running.
type jobs struct {
	c    *cron.Cron
	halt chan struct{} // closed when they stop: a run still waiting to begin gives up
}

// stop stops scheduling the jobs and waits for the running ones to end.
func (j *jobs) stop() {
	close(j.halt)
	<-j.c.Stop().Done()
}

// errJobSkipped ends a job run that did nothing: it counts as no run.
var errJobSkipped = errors.New("job skipped")

// startJobs schedules the jobs of the current state and starts them.
func (d *Daemon) startJobs(ctx context.Context) (*jobs, error) {
	st := d.state()
	cfg := st.cfg
	halt := make(chan struct{})
	c := cron.New(cron.WithLogger(cronLogger{d.log}), cron.WithChain(
		cron.Recover(cronLogger{d.log}), cron.SkipIfStillRunning(cronLogger{d.log})))
	for _, j := range []struct {
		name, spec string
		run        func() error
	}{
		{"crawl", cfg.Daemon.Crawl, func() error { return d.crawl(ctx, st) }},
		{"classify", cfg.Daemon.Classify, func() error { return d.classify(ctx, st) }},
		{"publish", cfg.Daemon.Publish, func() error { return d.publishScheduled(ctx, cfg, halt) }},
		{"prune", cfg.Daemon.Prune, func() error { return d.prune(cfg) }},
		{"seeds", cfg.Daemon.Seeds, func() error { return d.seeds(ctx, cfg) }},
	} {
		id, err := c.AddFunc(j.spec, func() {
			start := time.Now()
			err := j.run()
			if errors.Is(err, errJobSkipped) {
				d.log.Debug("job skipped", "job", j.name)
				return
			}
			took := time.Since(start)
			d.metrics.Job(j.name, took, err)
			d.status.ran(j.name, start, took, err)
			if err != nil {
				d.log.Error("job failed", "job", j.name, "err", err)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("%w: schedule of %s %q: %v", ErrUsage, j.name, j.spec, err)
		}
		d.status.schedule(j.name, j.spec, func() time.Time { return c.Entry(id).Next })
	}
	c.Start()
	d.status.started(d.now())
	return &jobs{c: c, halt: halt}, nil
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
