package daemon

import (
	"time"

	"github.com/fluxwatch/fluxwatch/config"
)

// The prune job deletes the observations older than the retention
// (none with retention 0).

// prune is one run of the prune job.
func (d *Daemon) prune(cfg *config.Config) error {
	if cfg.Retention <= 0 {
		return nil
	}
	start := time.Now()
	n, err := d.store.Prune(d.now().Add(-cfg.Retention), 10000)
	d.log.Info("job prune", "deleted_probes", n, "older_than", cfg.Retention, "elapsed", time.Since(start).Round(time.Millisecond))
	return err
}
