package networks

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// group is one network of a run before it has an id.
type group struct {
	domains             []string // sorted
	agents, nsAgents    []netip.Addr
	firstSeen, lastSeen time.Time
}

// reconcile gives this run's groups the ids of the stored networks they
// continue (see the package documentation), new ids numbered after seq
// to the rest, and logs what changed at now. It returns the networks and
// the new sequence.
func reconcile(prev []Network, groups []group, now time.Time, seq uint64) ([]Network, uint64) {
	now = now.UTC()
	where := map[string]int{} // domain → group
	for gi, g := range groups {
		for _, d := range g.domains {
			where[d] = gi
		}
	}
	// Each stored network continues into the group holding most of its
	// domains that are still flux (ties: the larger group, then the first).
	continues := make([][]int, len(groups)) // group → stored networks it continues
	parts := make([]map[int]int, len(prev)) // stored network → its domains per group
	for pi, p := range prev {
		parts[pi] = map[int]int{}
		for _, d := range p.Domains {
			if gi, ok := where[d]; ok {
				parts[pi][gi]++
			}
		}
		best := -1
		for _, gi := range slices.Sorted(maps.Keys(parts[pi])) {
			if best < 0 || parts[pi][gi] > parts[pi][best] ||
				parts[pi][gi] == parts[pi][best] && len(groups[gi].domains) > len(groups[best].domains) {
				best = gi
			}
		}
		if best >= 0 {
			continues[best] = append(continues[best], pi)
		}
	}
	ids := make([]string, len(groups))
	for gi, preds := range continues {
		// The largest predecessor's id survives a merge.
		slices.SortFunc(preds, func(a, b int) int {
			return cmp.Or(len(prev[b].Domains)-len(prev[a].Domains), compareIDs(prev[a].ID, prev[b].ID))
		})
		continues[gi] = preds
		if len(preds) > 0 {
			ids[gi] = prev[preds[0]].ID
		} else {
			seq++
			ids[gi] = idPrefix + strconv.FormatUint(seq, 10)
		}
	}
	out := make([]Network, len(groups))
	for gi, g := range groups {
		n := Network{ID: ids[gi], Domains: g.domains, Agents: g.agents, NSAgents: g.nsAgents,
			FirstSeen: g.firstSeen, LastSeen: g.lastSeen}
		preds := continues[gi]
		event := func(kind, format string, args ...any) {
			n.Events = append(n.Events, Event{At: now, Kind: kind, Detail: fmt.Sprintf(format, args...)})
		}
		before := map[string]bool{} // the domains of every predecessor
		if len(preds) == 0 {
			// A network of its own, or a part split off another.
			var from []string
			for pi := range prev {
				if n := parts[pi][gi]; n > 0 && !slices.Contains(continues[gi], pi) {
					from = append(from, fmt.Sprintf("%s (%d of its domains)", prev[pi].ID, n))
				}
			}
			if len(from) > 0 {
				event(EventFirstSeen, "split from %s", strings.Join(from, ", "))
			} else {
				event(EventFirstSeen, "%d domains: %s", len(g.domains), sample(g.domains))
			}
			n.Sizes = []Size{{At: now, Domains: len(g.domains), Agents: len(g.agents) + len(g.nsAgents)}}
			out[gi] = n
			continue
		}
		base := prev[preds[0]]
		n.Events = slices.Clone(base.Events)
		n.Sizes = slices.Clone(base.Sizes)
		for _, pi := range preds {
			p := prev[pi]
			if !p.FirstSeen.IsZero() && p.FirstSeen.Before(n.FirstSeen) || n.FirstSeen.IsZero() {
				n.FirstSeen = p.FirstSeen
			}
			for _, d := range p.Domains {
				before[d] = true
			}
		}
		if len(preds) > 1 {
			var others []string
			for _, pi := range preds[1:] {
				others = append(others, fmt.Sprintf("%s (%d domains)", prev[pi].ID, len(prev[pi].Domains)))
			}
			event(EventMerged, "with %s; kept the id of the largest", strings.Join(others, ", "))
		}
		// Parts of the predecessors that went to other groups: splits.
		var split []string
		for _, pi := range preds {
			for _, other := range slices.Sorted(maps.Keys(parts[pi])) {
				if other != gi {
					split = append(split, fmt.Sprintf("%d domains of %s to %s", parts[pi][other], prev[pi].ID, ids[other]))
				}
			}
		}
		if len(split) > 0 {
			event(EventSplit, "%s", strings.Join(split, ", "))
		}
		var added, gone []string
		for _, d := range g.domains {
			if !before[d] {
				added = append(added, d)
			}
		}
		for _, d := range slices.Sorted(maps.Keys(before)) {
			if _, ok := where[d]; !ok {
				gone = append(gone, d)
			}
		}
		if len(added) > 0 {
			event(EventGrew, "+%d domains: %s", len(added), sample(added))
		}
		if len(gone) > 0 {
			event(EventShrank, "−%d domains no longer flux: %s", len(gone), sample(gone))
		}
		size := Size{At: now, Domains: len(g.domains), Agents: len(g.agents) + len(g.nsAgents)}
		if k := len(n.Sizes); k == 0 || n.Sizes[k-1].Domains != size.Domains || n.Sizes[k-1].Agents != size.Agents {
			n.Sizes = append(n.Sizes, size)
		}
		out[gi] = n
	}
	for i := range out {
		if k := len(out[i].Events); k > maxEvents {
			out[i].Events = slices.Clone(out[i].Events[k-maxEvents:])
		}
		if k := len(out[i].Sizes); k > maxSizes {
			out[i].Sizes = slices.Clone(out[i].Sizes[k-maxSizes:])
		}
	}
	return out, seq
}

// sample names up to five domains, and how many more there are.
func sample(domains []string) string {
	const shown = 5
	if len(domains) <= shown {
		return strings.Join(domains, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(domains[:shown], ", "), len(domains)-shown)
}
