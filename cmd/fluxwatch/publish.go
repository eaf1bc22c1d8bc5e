package main

import (
	"errors"
	"fmt"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/storage"
)

// publish writes every export of cfg from the listed domains as stored,
// hands the rpz export to the zone server and records the publish as of
// kind (storage.PublishStart or storage.PublishScheduled). It holds the
// list still while it runs (see daemon.classifyMu), so every file and
// the record hold the same names. An export that fails keeps its previous
// file and does not hold back the others; the publish is recorded when at
// least one export was written (or there are none), and the failures are
// returned.
func (d *daemon) publish(cfg *config.Config, kind string) error {
	d.classifyMu.Lock()
	defer d.classifyMu.Unlock()
	d.listMu.Lock()
	defer d.listMu.Unlock()
	what := "job publish"
	if kind == storage.PublishStart {
		what = "start: published the stored list"
	}
	var errs []error
	for _, e := range cfg.Daemon.Exports {
		n, err := export(d.store, cfg, e.Format, e.Out, e.All, d.std.out)
		if err != nil {
			errs = append(errs, fmt.Errorf("publishing %s (%s): %w", e.Out, e.Format, err))
			continue
		}
		d.log.Info(what, "format", e.Format, "out", e.Out, "listed", n)
		if err := d.serving.published(e); err != nil { // the feed keeps serving the version before
			d.log.Error("feed: publishing the zone failed", "out", e.Out, "err", err)
		}
	}
	if len(errs) > 0 && len(errs) == len(cfg.Daemon.Exports) {
		return errors.Join(errs...) // nothing was published
	}
	rec, err := d.store.RecordPublishOf(d.now(), kind)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("recording the publish: %w", err))...)
	}
	if len(rec.Added) > 0 || len(rec.Removed) > 0 {
		d.log.Info(what+": list changed", "listed", rec.Listed, "added", len(rec.Added), "removed", len(rec.Removed))
	}
	return errors.Join(errs...)
}
