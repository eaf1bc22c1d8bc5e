package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/feed"
	"github.com/fluxwatch/fluxwatch/metrics"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/seeds"
	"github.com/fluxwatch/fluxwatch/storage"
	"github.com/fluxwatch/fluxwatch/web"
)

func daemonCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon --config FILE [flags]",
		Short: "crawl, classify and publish on cron schedules",
		Long: `Run the jobs of the config file's daemon section on their cron schedules:
crawl the due domains (or hand them to remote agents), classify, publish the
exports, prune old observations and import new seed files; serve the exports,
the web view, metrics and the RPZ zone if configured. SIGHUP reloads the
config file (the flags given still override it); SIGINT or SIGTERM stops it
after the running jobs finish.

Exit status: 0 when it stopped on a signal; 1 when it could not start or could
not store what it measured. A job that fails is logged, shown by status and
run again at its next time; a reload that fails keeps the running
configuration.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	s.crawlFlags()
	s.classifyFlags()
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		log := logger(cfg, std)
		log.Debug("running Go code on", "procs", useProcs(cfg.Procs))
		store, err := ownStore(ctx, cfg, "the daemon")
		if err != nil {
			return err
		}
		defer store.Close()
		d := &daemon{store: store, log: log, std: std, now: std.clock(), metrics: metrics.New(cfg.DB),
			status: newDaemonStatus(cfg.DB), classified: make(chan struct{})}
		// Everything a job needs is built before anything starts: a daemon
		// that cannot load a table, read a seed file or write an export does
		// not start, rather than run half-configured.
		st, err := d.build(ctx, cfg)
		if err != nil {
			return err
		}
		defer func() { d.state().release() }()
		d.current.Store(st)
		// status says what is stored until the first classification says more.
		if counts, domains, err := storedCounts(store); err == nil {
			d.status.classified(counts)
			d.status.domains(domains)
		} else {
			log.Warn("start: counting the stored verdicts", "err", err)
		}
		app, err := d.httpApp(cfg)
		if err != nil {
			return err
		}
		serving, err := startFeed(cfg, log, app)
		if err != nil {
			return err
		}
		defer serving.close()
		d.serving = serving
		if serving.dns != nil {
			d.metrics.FeedFrom(serving.dns.Stats)
		}
		// Before any job runs, every export is written from the list as
		// stored and the zone served from it, with a NOTIFY (the listeners
		// serve the last run's files until then, so a secondary that asks in
		// between gets what it had, and an IXFR from it gets the differences).
		// A publish that fails here leaves the last run's files served.
		if err := d.publish(cfg, storage.PublishStart); err != nil {
			log.Error("publishing the stored list at start failed; serving the files of the last run", "err", err)
		}
		d.writer = store.NewWriter(storage.WriterOptions{
			OnCommit: func(p, o int64) {
				log.Debug("committed", "probes", p, "observations", o)
			},
			OnTx: d.metrics.Transaction,
		})
		if cfg.Daemon.NATS.URL != "" {
			// Remote vantages: the crawl job hands due domains to the agents,
			// and their observations come back through the coordinator.
			cc := cluster.CoordinatorConfigOf(cfg)
			cc.Now, cc.Logger = d.now, log
			if d.coord, err = cluster.NewCoordinator(store, cc); err != nil {
				return fmt.Errorf("daemon.nats: %w", err)
			}
			if err := d.coord.Start(ctx); err != nil {
				return fmt.Errorf("daemon.nats: %w", err)
			}
			defer d.coord.Close()
			d.status.agents = d.coord.Agents
			d.metrics.CoordinatorFrom(func() metrics.IngestCounts {
				s := d.coord.Stats()
				return metrics.IngestCounts{Received: s.Received, Stored: s.Stored, Redelivered: s.Redelivered,
					Terminated: s.Rejected, Retried: s.Retried, Batches: s.Batches}
			})
		}
		d.metrics.CommittedFrom(d.writer.Committed)
		// Every other command runs through the daemon while it holds the
		// database.
		defer hold("daemon", cfg, store, d.now, log, d.exclusive, func() Status { return d.status.snapshot(d.now()) })()

		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		js, err := d.startJobs(ctx)
		if err != nil {
			return err
		}
		log.Info("daemon started", "db", cfg.DB, "vantages", len(st.vantages), "crawl", cfg.Daemon.Crawl,
			"classify", cfg.Daemon.Classify, "publish", cfg.Daemon.Publish, "prune", cfg.Daemon.Prune,
			"seeds", cfg.Daemon.Seeds, "exports", len(cfg.Daemon.Exports))
		for running := true; running; {
			select {
			case <-ctx.Done():
				running = false
			case <-hup:
				// Reload: a config that does not load or build changes
				// nothing; otherwise the jobs stop (running ones finish), the
				// new settings take over and the jobs start again.
				next, err := s.load()
				if err == nil {
					var nst *daemonState
					if nst, err = d.build(ctx, next); err == nil {
						js.stop()
						old := d.state()
						d.current.Store(nst)
						old.release()
						if js, err = d.startJobs(ctx); err != nil {
							return err
						}
						if !reflect.DeepEqual(next.Daemon.Serve, old.cfg.Daemon.Serve) {
							log.Warn("reload: daemon.serve changes need a restart; the listeners stay as they were")
						}
						log.Info("reloaded", "config", s.configPath, "vantages", len(nst.vantages), "exports", len(next.Daemon.Exports))
						continue
					}
				}
				log.Error("reload failed; the running configuration stays", "err", err)
			}
		}
		log.Info("daemon stopping: finishing running jobs")
		js.stop()
		if err := d.writer.Close(); err != nil {
			return fmt.Errorf("committing observations: %w", err)
		}
		probes, observations := d.writer.Committed()
		d.status.stopped(d.now())
		log.Info("daemon stopped", "probes", probes, "observations", observations)
		return nil
	}
	return cmd
}

// daemon is the running daemon: what stays across reloads (the database,
// the writer, the listeners, metrics, status) and the state one
// configuration builds.
type daemon struct {
	store   *storage.Store
	writer  *storage.Writer
	log     *slog.Logger
	std     *stdio
	now     func() time.Time
	metrics *metrics.Metrics
	status  *daemonStatus
	serving *feedServers
	coord   *cluster.Coordinator // nil: measure locally
	current atomic.Pointer[daemonState]
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

// daemonState is what one configuration builds.
type daemonState struct {
	cfg        *config.Config
	sched      *scheduler.Scheduler
	vantages   []scheduler.Vantage
	release    func()
	classifier *classify.Classifier
}

func (d *daemon) state() *daemonState { return d.current.Load() }

// exclusive is the daemon's lock for a job a command runs through the
// control socket: a classification is one of the daemon's own (it counts
// as the first one for the first publish, and status shows its counts),
// and a listing edit never falls in the middle of a publish.
func (d *daemon) exclusive(job string) (func(), error) {
	switch job {
	case "classify":
		d.classifyMu.Lock()
		return func() {
			if counts, domains, err := storedCounts(d.store); err == nil {
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

// build makes the scheduler and classifier of cfg, checks that every export
// can be written and imports the configured seed files. It writes nothing
// to the store unless everything else succeeded: a reload that fails
// changes nothing.
func (d *daemon) build(ctx context.Context, cfg *config.Config) (*daemonState, error) {
	for _, e := range cfg.Daemon.Exports {
		if e.Out == "-" {
			return nil, fmt.Errorf("%w: daemon.exports: a daemon cannot publish to standard output", errUsage)
		}
		if err := writableDir(filepath.Dir(e.Out)); err != nil {
			return nil, fmt.Errorf("daemon.exports: cannot publish %s: %w", e.Out, err)
		}
	}
	if dir := cfg.Daemon.SeedDir; dir != "" {
		if err := writableDir(dir); err != nil {
			return nil, fmt.Errorf("daemon.seed_dir: %w", err)
		}
	}
	var seedFiles []seedFile
	for _, f := range cfg.Daemon.SeedFiles {
		sf, err := d.readSeeds(f)
		if err != nil {
			return nil, fmt.Errorf("daemon.seed_files: %w", err)
		}
		seedFiles = append(seedFiles, sf)
	}
	c, err := newClassifier(cfg)
	if err != nil {
		return nil, err
	}
	sched, vantages, release, err := newScheduler(cfg, d.store, d.now, d.log, d.metrics)
	if err != nil {
		return nil, err
	}
	for _, sf := range seedFiles {
		if err := d.addSeeds(sf); err != nil {
			release()
			return nil, fmt.Errorf("daemon.seed_files: %w", err)
		}
	}
	var exports []web.Export
	for _, e := range cfg.Daemon.Exports {
		exports = append(exports, web.Export{Format: e.Format, Path: e.Out})
	}
	view := web.New(d.store, c.Meta, web.Options{Exports: exports, Logger: d.log})
	d.web.Store(&view)
	return &daemonState{cfg: cfg, sched: sched, vantages: vantages, release: release, classifier: c}, nil
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

// importSeeds adds the names of a seed file; rejected lines are logged
// with their file:line (the first few of each file).
func (d *daemon) importSeeds(file string) error {
	sf, err := d.readSeeds(file)
	if err != nil {
		return err
	}
	return d.addSeeds(sf)
}

// seedFile is what a seed file holds, read but not yet added.
type seedFile struct {
	file     string
	names    []string
	rejected int
}

// readSeeds reads a seed file and logs its rejected lines.
func (d *daemon) readSeeds(file string) (seedFile, error) {
	names, rejects, err := readSeedFile(file, "", d.std, true)
	if err != nil {
		return seedFile{}, err
	}
	for i, r := range rejects {
		if i == 10 {
			d.log.Warn("seeds: more rejected lines", "file", file, "count", len(rejects)-10)
			break
		}
		d.log.Warn("seeds: line rejected", "err", r.Error())
	}
	return seedFile{file: file, names: names, rejected: len(rejects)}, nil
}

// addSeeds adds what readSeeds read.
func (d *daemon) addSeeds(sf seedFile) error {
	res, err := d.store.AddDomains(sf.names, seeds.DisplayName(sf.file), d.now())
	if err != nil {
		return err
	}
	d.log.Info("seeds imported", "file", sf.file, "added", res.Added, "known", res.Known, "rejected", sf.rejected)
	return nil
}

// importSeedDir imports every seed file in dir, then moves it into
// dir/imported (so each is imported once). Hidden files and files changed
// in the last two seconds (perhaps still being written) wait.
func (d *daemon) importSeedDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	done := filepath.Join(dir, "imported")
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || strings.HasPrefix(e.Name(), ".") || time.Since(info.ModTime()) < 2*time.Second {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := d.importSeeds(path); err != nil {
			d.log.Error("seeds: import failed; the file stays for the next run", "file", path, "err", err)
			continue
		}
		if err := os.MkdirAll(done, 0o755); err != nil {
			return err
		}
		if err := os.Rename(path, filepath.Join(done, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// scheduledJobs are the jobs of one configuration, running.
type scheduledJobs struct {
	c    *cron.Cron
	halt chan struct{} // closed when they stop: a run still waiting to begin gives up
}

// stop stops scheduling the jobs and waits for the running ones to end.
func (j *scheduledJobs) stop() {
	close(j.halt)
	<-j.c.Stop().Done()
}

// errJobSkipped ends a job run that did nothing: it counts as no run.
var errJobSkipped = errors.New("job skipped")

// startJobs schedules the jobs of the current state and starts them.
func (d *daemon) startJobs(ctx context.Context) (*scheduledJobs, error) {
	st := d.state()
	cfg := st.cfg
	halt := make(chan struct{})
	c := cron.New(cron.WithLogger(cronLogger{d.log}), cron.WithChain(
		cron.Recover(cronLogger{d.log}), cron.SkipIfStillRunning(cronLogger{d.log})))
	jobs := []struct {
		name, spec string
		run        func() error
	}{
		{"crawl", cfg.Daemon.Crawl, func() error {
			if d.coord != nil {
				ds, err := d.coord.Dispatch(ctx)
				d.log.Info("job crawl: dispatched to agents", "domains", ds.Domains, "items", ds.Published, "failed", ds.Failed)
				return err
			}
			due, err := d.store.Due(d.now())
			if err != nil || len(due) == 0 {
				return err
			}
			rs, err := st.sched.Round(ctx, due, d.writer)
			d.log.Info("job crawl", "domains", len(due), "probes", rs.Probes, "queries", rs.QueriesSent,
				"answered", rs.Answered, "elapsed", rs.Elapsed.Round(time.Millisecond))
			return err
		}},
		{"classify", cfg.Daemon.Classify, func() error {
			d.classifyMu.Lock()
			defer d.classifyMu.Unlock()
			defer d.firstClassify.Do(func() { close(d.classified) })
			counts, err := st.classifier.Run(ctx, d.store, cfg.Window, d.now(), nil)
			d.log.Info("job classify", "single_flux", counts[classify.SingleFlux], "double_flux", counts[classify.DoubleFlux],
				"benign", counts[classify.Benign], "insufficient", counts[classify.InsufficientData], "unresolvable", counts[classify.Unresolvable],
				"listed", counts[classify.CountListed], "newly_listed", counts[classify.CountAdded],
				"expired", counts[classify.CountExpired], "cleared", counts[classify.CountCleared], "delisted", counts[classify.CountRemoved])
			if err == nil {
				d.metrics.Classified(counts)
				d.status.classified(counts)
				// Here, not after a crawl: with agents the daemon does
				// not crawl itself.
				var domains storage.DomainCounts
				if domains, err = d.store.CountDomains(); err == nil {
					d.status.domains(domains)
				}
			}
			return err
		}},
		{"publish", cfg.Daemon.Publish, func() error {
			// The start published the stored list; the first publish
			// after it is of what the first classification made of it
			// (whether or not that classification failed halfway: the
			// batches it stored are the list now).
			select {
			case <-d.classified:
			case <-halt:
				return errJobSkipped
			case <-ctx.Done():
				return errJobSkipped
			}
			return d.publish(cfg, storage.PublishScheduled)
		}},
		{"prune", cfg.Daemon.Prune, func() error {
			if cfg.Retention <= 0 {
				return nil
			}
			start := time.Now()
			n, err := d.store.Prune(d.now().Add(-cfg.Retention), 10000)
			d.log.Info("job prune", "deleted_probes", n, "older_than", cfg.Retention, "elapsed", time.Since(start).Round(time.Millisecond))
			return err
		}},
		{"seeds", cfg.Daemon.Seeds, func() error {
			var errs []error
			if cfg.Daemon.SeedDir != "" {
				errs = append(errs, d.importSeedDir(cfg.Daemon.SeedDir))
			}
			if len(cfg.Daemon.SeedURLs) > 0 {
				errs = append(errs, d.importSeedURLs(ctx, cfg))
			}
			return errors.Join(errs...)
		}},
	}
	for _, j := range jobs {
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
			return nil, fmt.Errorf("%w: schedule of %s %q: %v", errUsage, j.name, j.spec, err)
		}
		d.status.schedule(j.name, j.spec, func() time.Time { return c.Entry(id).Next })
	}
	c.Start()
	d.status.started(d.now())
	return &scheduledJobs{c: c, halt: halt}, nil
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}

// feedServers are the listeners of daemon.serve: the RPZ zone by zone
// transfer and the export files over HTTP. Methods on a nil *feedServers
// do nothing.
type feedServers struct {
	dns     *feed.Server
	files   *feed.FileServer
	rpzPath string // the rpz export the DNS server publishes
}

// startFeed starts what daemon.serve configures. The DNS server starts
// with the rpz export's last file, if there is one: the version the
// secondaries hold, which the start's publish then follows with a NOTIFY
// and the differences for IXFR.
func startFeed(cfg *config.Config, log *slog.Logger, app http.Handler) (*feedServers, error) {
	sv := cfg.Daemon.Serve
	s := &feedServers{}
	if sv.DNSListen != "" {
		keys, err := feed.ConfigKeys(sv)
		if err != nil {
			return nil, err
		}
		var notify []feed.Secondary
		for _, addr := range sv.NotifyAddrs() {
			notify = append(notify, feed.Secondary{Addr: addr, Key: sv.NotifyKey})
		}
		versions := sv.IXFRVersions
		if versions == 0 {
			versions = -1 // feed: none kept
		}
		srv, err := feed.NewServer(feed.Options{Zone: cfg.RPZZone, Addr: sv.DNSListen, Keys: keys,
			Versions: versions, Notify: notify, Logger: log})
		if err != nil {
			return nil, err
		}
		for _, e := range cfg.Daemon.Exports {
			if e.Format == "rpz" && e.Out != "-" {
				s.rpzPath = e.Out
				break
			}
		}
		if _, err := os.Stat(s.rpzPath); err == nil {
			// Before Start: served from the first answer, notified to no one.
			if err := srv.PublishFile(s.rpzPath); err != nil {
				log.Warn("feed: not serving the last published zone", "err", err)
			}
		}
		if err := srv.Start(); err != nil {
			return nil, err
		}
		s.dns = srv
	}
	if sv.HTTPListen != "" {
		files := map[string]string{}
		for _, e := range cfg.Daemon.Exports {
			if e.Out != "-" {
				files[filepath.Base(e.Out)] = e.Out
			}
		}
		fs, err := feed.NewFileServer(feed.FileOptions{Addr: sv.HTTPListen, Files: files, Logger: log, App: app})
		if err == nil {
			err = fs.Start()
		}
		if err != nil {
			s.close()
			return nil, err
		}
		s.files = fs
	}
	return s, nil
}

// published hands the file of export e, just written, to the DNS server
// when it is the rpz export it serves.
func (s *feedServers) published(e config.Export) error {
	if s == nil || s.dns == nil || e.Format != "rpz" || e.Out != s.rpzPath {
		return nil
	}
	return s.dns.PublishFile(e.Out)
}

// close stops the listeners.
func (s *feedServers) close() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.dns != nil {
		errs = append(errs, s.dns.Close())
	}
	if s.files != nil {
		errs = append(errs, s.files.Close())
	}
	return errors.Join(errs...)
}
