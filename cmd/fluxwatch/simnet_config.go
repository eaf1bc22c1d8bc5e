package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// writeWorldConfig writes the world's config (simnet --config-out) and
// its tables, and adds the world's domains to the database the config
// names, so that `crawl --config FILE` has them to measure. A database
// another process holds (a daemon on this config) is left alone: the
// daemon adds the domains from daemon.seed_files itself.
func writeWorldConfig(w *simnet.World, path string, std *stdio) error {
	files, err := w.WriteConfig(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "simnet: wrote %s for crawl, classify and daemon --config, with %s, %s and %s\n",
		files.Config, files.ASNTable, files.Allowlist, files.Seeds)
	store, err := storage.Open(files.DB)
	if errors.Is(err, storage.ErrLocked) {
		fmt.Fprintf(std.out, "simnet: %s is in use (a daemon?): the world's domains were not added; its daemon.seed_files has them\n", files.DB)
		return nil
	}
	if err != nil {
		return err
	}
	var names []string
	for _, d := range w.Domains() {
		names = append(names, d.Name)
	}
	res, err := store.AddDomains(names, "simnet", time.Now())
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "simnet: %s holds the world's %d domains (%d added)\n", files.DB, len(names), res.Added)
	return nil
}
