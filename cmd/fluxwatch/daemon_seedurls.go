package main

import (
	"context"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/seeds"
)

// seedURLState is the file that remembers, per seed URL, the version of
// its list last imported (seeds.URLState): beside the database, as the
// daemon's status file is. It is not in the database: it is a cache of
// what the servers said, which storage has no place for, and losing it
// costs one whole fetch of each list, whose names are then known already.
func seedURLState(db string) string { return db + ".seedurls.json" }

// importSeedURLs fetches the lists of daemon.seed_urls, each conditionally
// on the version last imported, and adds the names of those that changed.
// Rejected lines are logged as URL:line (the first few of each list). A
// list that fails to fetch is logged by the job, and the names it brought
// before stay.
func (d *daemon) importSeedURLs(ctx context.Context, cfg *config.Config) error {
	f := seeds.Fetcher{MaxBytes: cfg.Daemon.SeedURLMaxBytes, Timeout: cfg.Daemon.SeedURLTimeout}
	return f.Poll(ctx, seedLists(cfg.Daemon), seedURLState(cfg.DB), func(l seeds.URLList, got seeds.Fetched) error {
		if got.NotModified {
			d.log.Debug("seeds: list not modified", "url", l.Redacted())
			return nil
		}
		for i, r := range got.Rejects {
			if i == 10 {
				d.log.Warn("seeds: more rejected lines", "url", l.Redacted(), "count", len(got.Rejects)-10)
				break
			}
			d.log.Warn("seeds: line rejected", "err", r.Error())
		}
		res, err := d.store.AddDomains(got.Names, l.Tag(), d.now())
		if err != nil {
			return err
		}
		d.log.Info("seeds imported", "url", l.Redacted(), "added", res.Added, "known", res.Known, "rejected", len(got.Rejects))
		return nil
	})
}

// seedLists returns the seed lists of daemon.seed_urls.
func seedLists(d config.Daemon) []seeds.URLList {
	var out []seeds.URLList
	for _, u := range d.SeedURLs {
		out = append(out, seeds.URLList{URL: u.URL, Source: u.Source, Column: u.Column})
	}
	return out
}
