package networks

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Options shape Update. The zero value uses DefaultRules and no IP tables.
type Options struct {
	Rules *Rules
	// Meta names the agents' ASNs and countries.
	Meta *ipmeta.DB
}

func (o Options) rules() Rules {
	if o.Rules == nil {
		return DefaultRules
	}
	return *o.Rules
}

// Update groups this run's flux members into networks (stats, which may
// be nil, holds what the safeguards need), matches them to the stored
// networks so that each keeps its id, logs the changes at now, and stores
// them in place of the old ones in one transaction. It returns them.
func Update(store *storage.Store, members []Member, stats *AddrStats, now time.Time, opts Options) ([]Network, error) {
	nets, seq, err := Compute(store, members, stats, now, opts)
	if err != nil {
		return nil, err
	}
	return nets, save(store, nets, seq)
}

// Compute is Update without storing: the networks and the id sequence
// they would be stored with.
func Compute(store *storage.Store, members []Member, stats *AddrStats, now time.Time, opts Options) ([]Network, uint64, error) {
	prev, err := List(store)
	if err != nil {
		return nil, 0, err
	}
	seq, err := store.NetworkSequence()
	if err != nil {
		return nil, 0, err
	}
	nets, seq := Build(prev, seq, members, stats, now, opts)
	return nets, seq, nil
}

// Build is Compute against given networks rather than the stored ones:
// it groups members into networks that continue prev (numbered up to
// seq), logs the changes at now, and returns them and the new sequence.
// The builder of a sharded cluster builds again against the networks it
// started a round from when a shard's members arrive late, so that the
// round's networks are what one build with every shard's members gives.
func Build(prev []Network, seq uint64, members []Member, stats *AddrStats, now time.Time, opts Options) ([]Network, uint64) {
	r := opts.rules()
	excluded := stats.Excluded(r.MaxNonFlux)
	groups := gather(members, excluded, r)
	nets, seq := reconcile(prev, groups, now, seq)
	for i := range nets {
		nets[i].ASNs, nets[i].Countries = origins(opts.Meta, nets[i].Agents, nets[i].NSAgents)
	}
	return nets, seq
}

// gather is Group with each group's domains, agents and time span gathered.
func gather(members []Member, excluded func(netip.Addr) bool, r Rules) []group {
	var out []group
	for _, idx := range Group(members, excluded, r) {
		var g group
		agents, ns := map[netip.Addr]bool{}, map[netip.Addr]bool{}
		for _, i := range idx {
			m := members[i]
			g.domains = append(g.domains, m.Domain)
			for _, a := range m.Agents {
				if excluded == nil || !excluded(a) {
					agents[a] = true
				}
			}
			for _, a := range m.NSAgents {
				if excluded == nil || !excluded(a) {
					ns[a] = true
				}
			}
			if !m.FirstSeen.IsZero() && (g.firstSeen.IsZero() || m.FirstSeen.Before(g.firstSeen)) {
				g.firstSeen = m.FirstSeen.UTC()
			}
			if m.LastSeen.After(g.lastSeen) {
				g.lastSeen = m.LastSeen.UTC()
			}
		}
		slices.Sort(g.domains)
		g.agents, g.nsAgents = sortedSet(agents), sortedSet(ns)
		out = append(out, g)
	}
	return out
}

func sortedSet(set map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	if len(out) > MaxAgents {
		out = out[:MaxAgents]
	}
	return out
}

// origins returns the distinct ASNs and countries of the addresses.
func origins(meta *ipmeta.DB, lists ...[]netip.Addr) ([]uint32, []string) {
	if meta == nil {
		return nil, nil
	}
	asns, countries := map[uint32]bool{}, map[string]bool{}
	for _, list := range lists {
		for _, a := range list {
			info, _ := meta.Lookup(a)
			if info.ASN != 0 {
				asns[info.ASN] = true
			}
			if info.Country != "" {
				countries[info.Country] = true
			}
		}
	}
	var as []uint32
	for n := range asns {
		as = append(as, n)
	}
	slices.Sort(as)
	var cs []string
	for c := range countries {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, cmp.Compare)
	return as, cs
}
