package classify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// botnet is a pool of agents over 30 /16s (30 ASNs in asnTable).
func botnet(rng *rand.Rand, n int) []string {
	return spread(rng, 30, n)
}

// pick returns k addresses of pool, fresh each call.
func pick(rng *rand.Rand, pool []string, k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = pool[rng.IntN(len(pool))]
	}
	return out
}

// A domain whose first round's few addresses are mostly agents of a known
// network is flux by association, on one round through one vantage; its
// own features alone need more.
func TestAssociationWithAKnownNetwork(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	pool := botnet(rng, 150)
	var agents []string
	agents = append(agents, pool[:120]...) // what the network's domains have shown so far
	known := networks.NewIndex([]networks.Network{{ID: "net-4", Domains: []string{"a.test", "b.test"}, Agents: mustAddrs(agents)}})
	c := Classifier{Meta: asnTable(t)}
	classifyWith := func(w world) Verdict {
		v, _ := c.classify("new.test", w.probes("new.test"), t0.Add(time.Hour), known)
		return v
	}
	oneRound := world{rounds: 1, vantages: 1, ttl: 120, nsTTL: 86400, ns: stableNS,
		addrs: func(int, int) []string { return pick(rng, pool[:120], 3) }}
	v := classifyWith(oneRound)
	if v.Verdict != SingleFlux || v.Network != "net-4" || v.NetworkAgentsSeen < 2 ||
		!strings.Contains(v.Evidence, "flux by association") || !strings.Contains(v.Evidence, "known network net-4") {
		t.Fatalf("one round through one vantage among a known network's agents: %s (%s, %d agents seen): %s", v.Verdict, v.Network, v.NetworkAgentsSeen, v.Evidence)
	}
	if alone := c.Classify("new.test", oneRound.probes("new.test"), t0.Add(time.Hour)); alone.Verdict != InsufficientData {
		t.Fatalf("without the network: %s: %s", alone.Verdict, alone.Evidence)
	}

	cases := []struct {
		name string
		w    world
		c    Classifier
	}{
		// Its own answers shown stable: two rounds, one answer.
		{"stable", world{rounds: 2, vantages: 2, ttl: 120, addrs: func(int, int) []string { return pool[:3] }}, c},
		// One agent, its only address: a majority, but a coincidence, not
		// a network.
		{"one agent", world{rounds: 1, vantages: 1, ttl: 120, addrs: func(int, int) []string {
			return []string{pool[0]}
		}}, c},
		// A minority of its addresses are agents.
		{"minority", world{rounds: 1, vantages: 2, ttl: 120, addrs: func(_, v int) []string {
			return append([]string{pool[2*v], pool[2*v+1]}, spread(rng, 30, 6)[:3]...)
		}}, c},
		// Long-lived answers are not flux, whoever's agents they are.
		{"long TTL", world{rounds: 1, vantages: 2, ttl: 86400, addrs: func(int, int) []string { return pick(rng, pool[:120], 3) }}, c},
		// Allowlisted names are never listed.
		{"allowlisted", oneRound, Classifier{Meta: asnTable(t), Allow: &Allowlist{names: map[string]string{"new.test": "test:1"}}}},
	}
	for _, tc := range cases {
		v, _ := tc.c.classify("new.test", tc.w.probes("new.test"), t0.Add(time.Hour), known)
		if IsFlux(v.Verdict) || v.Network != "" || v.NetworkAgentsSeen != 0 {
			t.Errorf("%s: %s (%s): %s", tc.name, v.Verdict, v.Network, v.Evidence)
		}
	}
}

func mustAddrs(ss []string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// Run builds the flux networks and stores them (a dry run does not); the
// verdicts read back name their network; the next run associates a new
// domain of the network on its first round, and it joins the network,
// which keeps its id.
func TestRunBuildsNetworksAndAssociates(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	pool := botnet(rng, 120)
	store, err := storage.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var probes []obs.Probe
	for _, d := range []string{"a.test", "b.test", "c.test"} {
		probes = append(probes, world{rounds: 6, vantages: 3, ttl: 60, nsTTL: 86400, ns: stableNS,
			addrs: func(int, int) []string { return pick(rng, pool, 4) }}.probes(d)...)
	}
	// Another flux domain with agents of its own, and a benign name.
	probes = append(probes, world{rounds: 6, vantages: 3, ttl: 60, addrs: func(int, int) []string {
		return []string{fmt.Sprintf("10.%d.9.%d", 40+rng.IntN(30), 1+rng.IntN(200)), fmt.Sprintf("10.%d.9.%d", 40+rng.IntN(30), 1+rng.IntN(200)), fmt.Sprintf("10.%d.8.%d", 40+rng.IntN(30), 1+rng.IntN(200)), fmt.Sprintf("10.%d.7.%d", 40+rng.IntN(30), 1+rng.IntN(200))}
	}}.probes("other.test")...)
	probes = append(probes, world{rounds: 6, vantages: 3, ttl: 300, addrs: func(int, int) []string { return []string{"10.90.0.1"} }}.probes("site.test")...)
	if _, err := store.AddDomains([]string{"a.test", "b.test", "c.test", "other.test", "site.test", "new.test"}, "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	c := &Classifier{Meta: asnTable(t)}
	now := t0.Add(20 * time.Minute)
	if _, err := (&Classifier{Meta: asnTable(t), DryRun: true}).Run(context.Background(), store, time.Hour, now, nil); err != nil {
		t.Fatal(err)
	}
	if nets, _ := networks.List(store); len(nets) != 0 {
		t.Fatalf("a dry run stored networks: %+v", nets)
	}
	counts, err := c.Run(context.Background(), store, time.Hour, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	nets, err := networks.List(store)
	if err != nil || len(nets) != 2 || counts[CountNetworks] != 2 {
		t.Fatalf("networks: %+v, %v, counts %v", nets, err, counts)
	}
	abc := nets[0]
	if strings.Join(abc.Domains, " ") != "a.test b.test c.test" || len(abc.ASNs) < 20 {
		t.Fatalf("the network of a, b and c: %+v", abc)
	}
	seen := map[string]string{}
	if err := Each(store, false, func(v Verdict) error { seen[v.Domain] = v.Network; return nil }); err != nil {
		t.Fatal(err)
	}
	if seen["b.test"] != abc.ID || seen["site.test"] != "" || seen["other.test"] == abc.ID || seen["other.test"] == "" {
		t.Fatalf("networks of the verdicts: %v", seen)
	}
	if v, err := Load(store, "c.test"); err != nil || v.Network != abc.ID {
		t.Fatalf("Load(c.test): %+v, %v", v, err)
	}
	// new.test answers once, through one vantage, three of the agents.
	later := now.Add(10 * time.Minute)
	p := world{rounds: 1, vantages: 1, ttl: 60, addrs: func(int, int) []string {
		return []string{abc.Agents[rng.IntN(len(abc.Agents))].String(), abc.Agents[rng.IntN(len(abc.Agents))].String(), abc.Agents[rng.IntN(len(abc.Agents))].String()}
	}}.probes("new.test")
	for i := range p {
		p[i].Start = later
		for j := range p[i].Observations {
			p[i].Observations[j].Time = later
		}
	}
	if _, err := store.WriteProbes(p); err != nil {
		t.Fatal(err)
	}
	var nv Verdict
	if _, err := c.Run(context.Background(), store, time.Hour, later, func(v Verdict) error {
		if v.Domain == "new.test" {
			nv = v
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if nv.Verdict != SingleFlux || nv.Network != abc.ID || nv.Features.Rounds != 1 {
		t.Fatalf("new.test: %s %s: %s", nv.Verdict, nv.Network, nv.Evidence)
	}
	n, err := networks.Of(store, "new.test")
	if err != nil || n == nil || n.ID != abc.ID || len(n.Domains) != 4 {
		t.Fatalf("network of new.test: %+v, %v", n, err)
	}
}
