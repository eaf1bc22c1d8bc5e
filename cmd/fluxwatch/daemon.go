package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/storage"
)

func cmdDaemon(ctx context.Context, args []string, std *stdio) error {
	s := newFlags("daemon", "daemon --config FILE [flags]", std)
	s.crawlFlags()
	s.classifyFlags()
	cfg, err := s.parse(args)
	if err != nil {
		return err
	}
	log := logger(cfg, std)
	store, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	now := std.clock()
	sched, vantages, release, err := newScheduler(cfg, store, now, log)
	if err != nil {
		return err
	}
	defer release()
	w := store.NewWriter(storage.WriterOptions{OnCommit: func(p, o int64) {
		log.Debug("committed", "probes", p, "observations", o)
	}})

	c := cron.New(cron.WithLogger(cronLogger{log}), cron.WithChain(
		cron.Recover(cronLogger{log}), cron.SkipIfStillRunning(cronLogger{log})))
	jobs := []struct {
		name, spec string
		run        func() error
	}{
		{"crawl", cfg.Daemon.Crawl, func() error {
			due, err := store.Due(now())
			if err != nil || len(due) == 0 {
				return err
			}
			st, err := sched.Round(ctx, due, w)
			log.Info("job crawl", "domains", len(due), "probes", st.Probes, "queries", st.QueriesSent,
				"answered", st.Answered, "elapsed", st.Elapsed.Round(time.Millisecond))
			return err
		}},
		{"classify", cfg.Daemon.Classify, func() error {
			counts, err := classifyStore(ctx, cfg, store, now(), nil)
			log.Info("job classify", "single_flux", counts[classify.SingleFlux], "double_flux", counts[classify.DoubleFlux],
				"benign", counts[classify.Benign], "insufficient", counts[classify.InsufficientData], "unresolvable", counts[classify.Unresolvable],
				"listed", counts["listings_added"], "expired", counts["listings_expired"], "delisted", counts["listings_removed"])
			return err
		}},
		{"publish", cfg.Daemon.Publish, func() error {
			for _, e := range cfg.Daemon.Exports {
				n, err := export(store, cfg, e.Format, e.Out, e.All, std.out)
				if err != nil {
					return err
				}
				log.Info("job publish", "format", e.Format, "out", e.Out, "listed", n)
			}
			rec, err := store.RecordPublish(now())
			if err == nil && (len(rec.Added) > 0 || len(rec.Removed) > 0) {
				log.Info("job publish: list changed", "listed", rec.Listed, "added", len(rec.Added), "removed", len(rec.Removed))
			}
			return err
		}},
		{"prune", cfg.Daemon.Prune, func() error {
			if cfg.Retention <= 0 {
				return nil
			}
			start := time.Now()
			n, err := store.Prune(now().Add(-cfg.Retention), 10000)
			log.Info("job prune", "deleted_probes", n, "older_than", cfg.Retention, "elapsed", time.Since(start).Round(time.Millisecond))
			return err
		}},
	}
	for _, j := range jobs {
		if _, err := c.AddFunc(j.spec, func() {
			if err := j.run(); err != nil {
				log.Error("job failed", "job", j.name, "err", err)
			}
		}); err != nil {
			return fmt.Errorf("%w: schedule of %s %q: %v", errUsage, j.name, j.spec, err)
		}
	}
	log.Info("daemon started", "db", cfg.DB, "vantages", len(vantages), "crawl", cfg.Daemon.Crawl,
		"classify", cfg.Daemon.Classify, "publish", cfg.Daemon.Publish, "prune", cfg.Daemon.Prune, "exports", len(cfg.Daemon.Exports))
	c.Start()
	<-ctx.Done()
	log.Info("daemon stopping: finishing running jobs")
	<-c.Stop().Done()
	if err := w.Close(); err != nil {
		return fmt.Errorf("committing observations: %w", err)
	}
	probes, observations := w.Committed()
	log.Info("daemon stopped", "probes", probes, "observations", observations)
	return nil
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
