package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/feed"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/seeds"
)

// checkConfig makes the checks of cfg that config.Validate cannot make
// on its own, those that need the components built from it: the export
// formats, the seed URLs, the key and token files of daemon.serve and the
// daemon.nats section. Errors name the file and line as Validate's do.
func checkConfig(cfg *config.Config) error {
	var errs []error
	for i, e := range cfg.Daemon.Exports {
		if all := slices.Concat(results.Formats, results.AddressFormats); !slices.Contains(all, e.Format) {
			errs = append(errs, fmt.Errorf("%s: export %d: format %q is not one of %s", cfg.Where("daemon.exports"), i+1, e.Format, strings.Join(all, ", ")))
		}
	}
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
	errs = append(errs, feed.CheckConfig(cfg)...)
	errs = append(errs, cluster.CheckConfig(cfg))
	return errors.Join(errs...)
}
