package classify

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// shardBuilder is a NetworkBuilder that installs given networks and
// records what it is handed.
type shardBuilder struct {
	install  []networks.Network
	calls    []string
	statsFor int // what StatsSize returns
	active   int // what StatsSize was given
	run      NetworkRun
}

var _ NetworkBuilder = (*shardBuilder)(nil)

func (b *shardBuilder) Prepare(_ context.Context, store *storage.Store) error {
	b.calls = append(b.calls, "prepare")
	return networks.Install(store, b.install, 9)
}

func (b *shardBuilder) StatsSize(active int) int {
	b.calls = append(b.calls, "size")
	b.active = active
	return b.statsFor
}

func (b *shardBuilder) Build(_ context.Context, _ *storage.Store, run NetworkRun) (int, error) {
	b.calls = append(b.calls, "build")
	b.run = run
	return 7, nil
}

// With a network builder, Run associates with the networks it prepares
// (the cluster's, not the store's own), sizes the safeguards' stats as it
// says, and hands it the run's members and stats in place of building and
// storing networks itself; a dry run asks nothing of it.
func TestShardNetworkBuilderTakesOverBuilding(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 92))
	pool := botnet(rng, 120)
	store, err := storage.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var probes []obs.Probe
	for _, d := range []string{"a.test", "b.test"} {
		probes = append(probes, world{rounds: 6, vantages: 3, ttl: 60, nsTTL: 86400, ns: stableNS,
			addrs: func(int, int) []string { return pick(rng, pool, 4) }}.probes(d)...)
	}
	probes = append(probes, world{rounds: 6, vantages: 3, ttl: 300, addrs: func(int, int) []string { return []string{"10.90.0.1"} }}.probes("site.test")...)
	// new.test answers once, through one vantage, with agents of the
	// network another shard's domains showed.
	probes = append(probes, world{rounds: 1, vantages: 1, ttl: 60, addrs: func(int, int) []string { return pick(rng, pool[:60], 3) }}.probes("new.test")...)
	if _, err := store.AddDomains([]string{"a.test", "b.test", "site.test", "new.test"}, "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	elsewhere := networks.Network{ID: "net-9", Domains: []string{"x.test", "y.test"}, Agents: mustAddrs(pool[:60])}
	b := &shardBuilder{install: []networks.Network{elsewhere}, statsFor: 5000}
	now := t0.Add(20 * time.Minute)

	dry := &Classifier{Meta: asnTable(t), DryRun: true, Networks: b}
	if _, err := dry.Run(context.Background(), store, time.Hour, now, nil); err != nil {
		t.Fatal(err)
	}
	if len(b.calls) != 0 {
		t.Fatalf("a dry run called the builder: %v", b.calls)
	}

	c := &Classifier{Meta: asnTable(t), Networks: b}
	verdicts := map[string]Verdict{}
	counts, err := c.Run(context.Background(), store, time.Hour, now, func(v Verdict) error { verdicts[v.Domain] = v; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"prepare", "size", "build"}; !slices.Equal(b.calls, want) {
		t.Errorf("calls %v, want %v", b.calls, want)
	}
	if v := verdicts["new.test"]; v.Verdict != SingleFlux || v.Network != "net-9" {
		t.Errorf("new.test, among the prepared network's agents: %s (%s): %s", v.Verdict, v.Network, v.Evidence)
	}
	if counts[CountNetworks] != 7 {
		t.Errorf("counted %d networks, want the builder's 7", counts[CountNetworks])
	}
	var members []string
	for _, m := range b.run.Members {
		members = append(members, m.Domain)
	}
	if want := []string{"a.test", "b.test", "new.test"}; !slices.Equal(members, want) {
		t.Errorf("members %v, want %v", members, want)
	}
	if b.active != 4 || b.run.Active != 4 || !b.run.Now.Equal(now) {
		t.Errorf("active %d (size) and %d (build), now %v; want 4, 4, %v", b.active, b.run.Active, b.run.Now, now)
	}
	if b.run.Stats.NonFlux(netip.MustParseAddr("10.90.0.1")) != 1 {
		t.Error("the benign name's address is not in the stats handed over")
	}
	// Stats for 5000 domains: 10000 addresses, 16384 counters a row.
	if enc, _ := b.run.Stats.MarshalBinary(); len(enc) != 6*16384+6 {
		t.Errorf("stats of %d bytes, want those of 16384 counters a row", len(enc))
	}
	// The store holds what the builder installed; Run stored none of its own.
	nets, err := networks.List(store)
	if err != nil || len(nets) != 1 || nets[0].ID != "net-9" {
		t.Errorf("stored networks %+v, %v; want net-9 alone", nets, err)
	}
}
