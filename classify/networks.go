package classify

import (
	"context"
	"time"

	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/storage"
)

// NetworkBuilder builds the flux networks in place of Run, which otherwise
// builds them from its own flux verdicts and stores them. A cluster that
// shards its domains over several databases needs one: each shard's run
// sees its own domains only, and a network whose domains live on several
// shards must still be one network, the one a single machine would find.
// Run calls its methods from one goroutine, and none on a dry run, which
// associates with the networks the store holds and stores none.
type NetworkBuilder interface {
	// Prepare is called at the start of Run, before any domain is
	// classified: it stores in store the networks association is to use
	// (a shard: the ones the cluster built last).
	Prepare(ctx context.Context, store *storage.Store) error
	// StatsSize returns how many domains to size the run's safeguard
	// stats for (networks.StatsFor), given the store's active domains: a
	// shard sizes them for the whole cluster, so that every shard's stats
	// merge as they are.
	StatsSize(active int) int
	// Build is called at the end of Run with what the run found; it
	// stores the networks to be stored and returns how many there are.
	Build(ctx context.Context, store *storage.Store, run NetworkRun) (int, error)
}

// NetworkRun is what one Run found for the flux networks.
type NetworkRun struct {
	// Members are the run's flux verdicts.
	Members []networks.Member
	// Stats count the addresses of its other verdicts for the safeguards.
	Stats *networks.AddrStats
	// Active is how many active domains the store held: what a builder
	// that merges the stats of several runs sizes the merge for, so that
	// it is as wide as one machine's (networks.StatsFor of their sum).
	Active int
	// Now is the end of the run's window.
	Now time.Time
}
