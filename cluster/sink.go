package cluster

import (
	"context"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Sink takes the probes measurement produces: the one seam between
// measuring and keeping. *storage.Writer is the local sink (the probe goes
// into the database, as a local crawl does); *Publisher is a remote
// agent's (the probe goes to the observation stream, and the coordinator
// puts it into the database with storage.Store.WriteProbes, the call
// storage.Writer ends in). Implementations must be safe for concurrent use.
type Sink interface {
	Write(ctx context.Context, p obs.Probe) error
}

var (
	_ Sink = (*storage.Writer)(nil)
	_ Sink = (*Publisher)(nil)
)
