package daemon

import (
	"context"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The classify job judges every active domain over the window and moves
// the listings on; its classifier (classify.FromConfig) is built with the
// state. Its counts go to the metrics and the status.

// classify is one run of the classify job.
func (d *Daemon) classify(ctx context.Context, st *state) error {
	cfg := st.cfg
	d.classifyMu.Lock()
	defer d.classifyMu.Unlock()
	defer d.firstClassify.Do(func() { close(d.classified) })
	c, err := d.classifier(st)
	if err != nil {
		return err
	}
	counts, err := c.Run(ctx, d.db, cfg.Window, d.now(), nil)
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
}
