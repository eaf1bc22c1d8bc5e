package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/internal/export"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The publish job writes every export of daemon.exports from the list as
// stored and hands the rpz export to the zone server (feed.go).

// checkExportFormats says which exports have a format fluxwatch does not
// write, at the line of daemon.exports.
func checkExportFormats(cfg *config.Config) []error {
	var errs []error
	all := slices.Concat(results.Formats, results.AddressFormats)
	for i, e := range cfg.Daemon.Exports {
		if !slices.Contains(all, e.Format) {
			errs = append(errs, fmt.Errorf("%s: export %d: format %q is not one of %s", cfg.Where("daemon.exports"), i+1, e.Format, strings.Join(all, ", ")))
		}
	}
	return errs
}

// checkExports checks that every export can be written where it goes.
func checkExports(cfg *config.Config) error {
	for _, e := range cfg.Daemon.Exports {
		if e.Out == "-" {
			return fmt.Errorf("%w: daemon.exports: a daemon cannot publish to standard output", ErrUsage)
		}
		if err := writableDir(filepath.Dir(e.Out)); err != nil {
			return fmt.Errorf("daemon.exports: cannot publish %s: %w", e.Out, err)
		}
	}
	return nil
}

// writeExports writes every export of cfg from src and hands the rpz
// export to the zone server; it returns the exports' failures.
func (d *Daemon) writeExports(cfg *config.Config, src export.Source, what string) []error {
	var errs []error
	for _, e := range cfg.Daemon.Exports {
		n, err := export.WriteFrom(d.db, e.Format, e.Out, results.Options{All: e.All, Zone: cfg.RPZZone}, nil, nil, src)
		if err != nil {
			errs = append(errs, fmt.Errorf("publishing %s (%s): %w", e.Out, e.Format, err))
			continue
		}
		d.log.Info(what, "format", e.Format, "out", e.Out, "listed", n)
		if err := d.serving.published(e); err != nil { // the feed keeps serving the version before
			d.log.Error("feed: publishing the zone failed", "out", e.Out, "err", err)
		}
	}
	return errs
}

// publishScheduled is one run of the publish job. The start published
// the stored list; the first publish after it is of what the first
// classification made of it (whether or not that classification failed
// halfway: the batches it stored are the list now).
func (d *Daemon) publishScheduled(ctx context.Context, cfg *config.Config, halt <-chan struct{}) error {
	select {
	case <-d.classified:
	case <-halt:
		return errJobSkipped
	case <-ctx.Done():
		return errJobSkipped
	}
	return d.publish(ctx, cfg, storage.PublishScheduled)
}

// publish writes every export of cfg from the listed domains as stored,
// hands the rpz export to the zone server and records the publish as of
// kind (storage.PublishStart, PublishScheduled or PublishMoved). It holds the
// list still while it runs (see Daemon.classifyMu), so every file and
// the record hold the same names. An export that fails keeps its previous
// file and does not hold back the others; the publish is recorded when at
// least one export was written (or there are none), and the failures are
// returned.
func (d *Daemon) publish(ctx context.Context, cfg *config.Config, kind string) error {
	d.classifyMu.Lock()
	defer d.classifyMu.Unlock()
	d.listMu.Lock()
	defer d.listMu.Unlock()
	what := "job publish"
	switch kind {
	case storage.PublishStart:
		what = "start: published the stored list"
	case storage.PublishMoved:
		what = "shard: domains moved; published the stored list"
	}
	src, err := d.feedSource(ctx, cfg, true)
	if err != nil {
		return err // nothing was published: the files stay as they were
	}
	errs := d.writeExports(cfg, src, what)
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
