package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/seeds"
)

// The seeds job imports the seed files dropped in daemon.seed_dir and
// fetches the lists of daemon.seed_urls; the files of daemon.seed_files
// are imported when a configuration is built (at start and on SIGHUP).

// checkSeedURLs says which seed URLs cannot be fetched, at their lines.
func checkSeedURLs(cfg *config.Config) []error {
	var errs []error
	seen := map[string]bool{}
	for i, u := range cfg.Daemon.SeedURLs {
		key := cfg.Where(fmt.Sprintf("daemon.seed_urls[%d].url", i+1))
		if _, err := seeds.ParseURL(u.URL); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", key, err))
		} else if seen[u.URL] {
			errs = append(errs, fmt.Errorf("%s: %q is listed twice", key, u.URL))
		}
		seen[u.URL] = true
	}
	return errs
}

// seeds is one run of the seeds job.
func (d *Daemon) seeds(ctx context.Context, cfg *config.Config) error {
	var errs []error
	if cfg.Daemon.SeedDir != "" {
		errs = append(errs, d.importSeedDir(cfg.Daemon.SeedDir))
	}
	if len(cfg.Daemon.SeedURLs) > 0 {
		errs = append(errs, d.importSeedURLs(ctx, cfg))
	}
	return errors.Join(errs...)
}

// readSeedFiles checks the seed directory and reads the seed files of
// cfg, for build to add once everything else is built.
func (d *Daemon) readSeedFiles(cfg *config.Config) ([]seedFile, error) {
	if dir := cfg.Daemon.SeedDir; dir != "" {
		if err := writableDir(dir); err != nil {
			return nil, fmt.Errorf("daemon.seed_dir: %w", err)
		}
	}
	var out []seedFile
	for _, f := range cfg.Daemon.SeedFiles {
		sf, err := d.readSeeds(f)
		if err != nil {
			return nil, fmt.Errorf("daemon.seed_files: %w", err)
		}
		out = append(out, sf)
	}
	return out, nil
}

// importSeeds adds the names of a seed file; rejected lines are logged
// with their file:line (the first few of each file).
func (d *Daemon) importSeeds(file string) error {
	sf, err := d.readSeeds(file)
	if err != nil {
		return err
	}
	return d.addSeeds(sf, true)
}

// seedFile is what a seed file holds, read but not yet added.
type seedFile struct {
	file     string
	names    []string
	rejected int
}

// readSeeds reads a seed file (- is standard input) and logs its rejected
// lines.
func (d *Daemon) readSeeds(file string) (seedFile, error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return seedFile{}, fmt.Errorf("reading seeds: %w", err)
		}
		defer f.Close()
		r = f
	}
	names, rejects, err := seeds.ParseUnique(r, file, seeds.Options{})
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

// addSeeds adds what readSeeds read. With handOn, the names another shard
// owns are handed to it (a file dropped in this shard's seed directory);
// without, they are left out, for a list every shard reads itself (the
// seed files and seed URLs of the configuration).
func (d *Daemon) addSeeds(sf seedFile, handOn bool) error {
	names := sf.names
	if !handOn {
		names = d.ownSeeds(names)
	}
	res, err := d.store.AddDomains(names, seeds.DisplayName(sf.file), d.now())
	if err != nil {
		return err
	}
	d.log.Info("seeds imported", "file", sf.file, "added", res.Added, "known", res.Known, "other_shards", res.Elsewhere, "rejected", sf.rejected)
	return nil
}

// importSeedDir imports every seed file in dir, then moves it into
// dir/imported (so each is imported once). Hidden files and files changed
// in the last two seconds (perhaps still being written) wait.
func (d *Daemon) importSeedDir(dir string) error {
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
func (d *Daemon) importSeedURLs(ctx context.Context, cfg *config.Config) error {
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
		res, err := d.store.AddDomains(d.ownSeeds(got.Names), l.Tag(), d.now()) // every shard fetches the list
		if err != nil {
			return err
		}
		d.log.Info("seeds imported", "url", l.Redacted(), "added", res.Added, "known", res.Known, "other_shards", res.Elsewhere, "rejected", len(got.Rejects))
		return nil
	})
}

// ownSeeds returns the names this shard owns of a list every shard reads:
// all of them for a daemon that is no shard.
func (d *Daemon) ownSeeds(names []string) []string {
	if d.coord == nil {
		return names
	}
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !d.coord.Owns(n) })
}

// seedLists returns the seed lists of daemon.seed_urls.
func seedLists(d config.Daemon) []seeds.URLList {
	var out []seeds.URLList
	for _, u := range d.SeedURLs {
		out = append(out, seeds.URLList{URL: u.URL, Source: u.Source, Column: u.Column})
	}
	return out
}
