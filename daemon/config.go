package daemon

import (
	"errors"

	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/feed"
)

// CheckConfig makes the checks of cfg that config.Validate cannot make on
// its own, those of the components the daemon builds from it: the export
// formats (publish.go), the seed URLs (seeds.go), the key and token files
// of daemon.serve (feed) and the daemon.nats section (cluster). Errors
// name the file and line as Validate's do. Every command runs it: a file
// the daemon would refuse is refused by all.
func CheckConfig(cfg *config.Config) error {
	var errs []error
	errs = append(errs, checkExportFormats(cfg)...)
	errs = append(errs, checkSeedURLs(cfg)...)
	errs = append(errs, feed.CheckConfig(cfg)...)
	errs = append(errs, cluster.CheckConfig(cfg))
	return errors.Join(errs...)
}
