package networks

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Member is a flux domain as the grouping sees it. Its JSON form is how a
// shard of a cluster hands its members to the one that builds the
// networks.
type Member struct {
	Domain string `json:"domain"`
	// Agents are the A and AAAA addresses it resolved to over the window,
	// NSAgents the addresses of its flux name servers.
	Agents   []netip.Addr `json:"agents"`
	NSAgents []netip.Addr `json:"ns_agents,omitempty"`
	// Latest are the addresses of its latest answered round: where it is
	// now, when its window holds the agents of two networks.
	Latest []netip.Addr `json:"latest,omitempty"`
	// FirstSeen and LastSeen bound its evidence.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Rules are the thresholds of the grouping. DefaultRules documents each.
type Rules struct {
	// MinShared agents, making up at least MinOverlap of the smaller
	// member's agents, link two members.
	MinShared  int
	MinOverlap float64
	// MaxNonFlux: an address more domains not judged flux resolved to is
	// not an agent.
	MaxNonFlux int
}

// DefaultRules are the thresholds fluxwatch ships with, read from the
// distributions eval measures (over the final flux verdicts' agents,
// before the safeguards) on the simulated worlds 1–50; the README gives
// them and the figures on worlds 1001–1050.
//
// MinShared 3 and MinOverlap 0.1: on worlds 1–50 two domains of
// different networks shared at most 2 agents (a decoy, a coincidence of two
// botnets' residential networks) and overlapped by at most 0.071, while
// every domain of a network shared many more with its best-linked sibling
// and overlapped it far more (the README gives the figures). The Jaccard
// index of those best pairs fell under the different networks' overlap:
// the sizes of the samples, not their source, decide it. The margin is
// thin: on worlds 1001–1050 one pair of different networks shared 3
// agents at 0.111 before the safeguards, so there it was the safeguards
// (MaxNonFlux: the pair's shared addresses were decoys that non-flux names
// used too) that kept the networks apart.
//
// MaxNonFlux 2: shared hosting, CDN edges and parking services serve many
// names (the worlds' smallest such group holds three); before the
// classifier has judged them benign (their second round), the count of
// names not judged flux is what tells their addresses from agents, which
// such names resolve to only while a new domain of the network waits for
// its verdict.
var DefaultRules = Rules{MinShared: 3, MinOverlap: 0.1, MaxNonFlux: 2}

// Overlap returns the overlap coefficient of two sorted sets of
// addresses, |a∩b| / min(|a|,|b|), and the size of their intersection.
func Overlap(a, b []netip.Addr) (float64, int) {
	shared := intersection(a, b)
	if m := min(len(a), len(b)); m > 0 {
		return float64(shared) / float64(m), shared
	}
	return 0, 0
}

// Jaccard returns the Jaccard index of two sorted sets, |a∩b| / |a∪b|.
func Jaccard(a, b []netip.Addr) float64 {
	shared := intersection(a, b)
	if u := len(a) + len(b) - shared; u > 0 {
		return float64(shared) / float64(u)
	}
	return 0
}

// intersection counts the addresses two sorted sets share.
func intersection(a, b []netip.Addr) int {
	n := 0
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch c := a[i].Compare(b[j]); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			n++
			i++
			j++
		}
	}
	return n
}

// agentSet returns m's agents (A and NS) that excluded leaves in, sorted
// and distinct.
func agentSet(m Member, excluded func(netip.Addr) bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m.Agents)+len(m.NSAgents))
	for _, list := range [][]netip.Addr{m.Agents, m.NSAgents} {
		for _, a := range list {
			if excluded == nil || !excluded(a) {
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// Group divides members into flux networks by the rules (see the package
// documentation) and returns each as the indices of its members, in the
// order of their first member's domain name; members within a group are
// in name order too. excluded, if not nil, says which addresses are not
// agents. The grouping depends on the members, not on their order: the
// members of a cluster's shards, gathered in any order, group as one
// machine's do.
func Group(members []Member, excluded func(netip.Addr) bool, r Rules) [][]int {
	// Ties (which part a bridging member joins) are broken by position,
	// so the members are grouped in name order and the indices mapped
	// back.
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(members[a].Domain, members[b].Domain) })
	byName := make([]Member, len(members))
	for i, o := range order {
		byName[i] = members[o]
	}
	groups := groupInOrder(byName, excluded, r)
	for _, g := range groups {
		for k, i := range g {
			g[k] = order[i]
		}
	}
	return groups
}

// groupInOrder is Group on members in name order.
func groupInOrder(members []Member, excluded func(netip.Addr) bool, r Rules) [][]int {
	sets := make([][]netip.Addr, len(members))
	for i, m := range members {
		sets[i] = agentSet(m, excluded)
	}
	adj := links(sets, r)
	var groups [][]int
	seen := make([]bool, len(members))
	for start := range members {
		if seen[start] {
			continue
		}
		comp := []int{start}
		seen[start] = true
		for k := 0; k < len(comp); k++ {
			for _, j := range adj[comp[k]] {
				if !seen[j] {
					seen[j] = true
					comp = append(comp, j)
				}
			}
		}
		groups = append(groups, splitBridges(comp, adj, members, sets)...)
	}
	for _, g := range groups {
		slices.SortFunc(g, func(a, b int) int { return strings.Compare(members[a].Domain, members[b].Domain) })
	}
	slices.SortFunc(groups, func(a, b []int) int { return strings.Compare(members[a[0]].Domain, members[b[0]].Domain) })
	return groups
}

// links returns, for each member, the members it is linked to.
func links(sets [][]netip.Addr, r Rules) [][]int {
	holders := map[netip.Addr][]int32{}
	for i, s := range sets {
		for _, a := range s {
			holders[a] = append(holders[a], int32(i))
		}
	}
	shared := map[[2]int32]int{}
	for _, hs := range holders {
		for x := range hs {
			for y := x + 1; y < len(hs); y++ {
				shared[[2]int32{hs[x], hs[y]}]++
			}
		}
	}
	adj := make([][]int, len(sets))
	for pair, n := range shared {
		i, j := int(pair[0]), int(pair[1])
		if n < r.MinShared || float64(n) < r.MinOverlap*float64(min(len(sets[i]), len(sets[j]))) {
			continue
		}
		adj[i] = append(adj[i], j)
		adj[j] = append(adj[j], i)
	}
	for i := range adj {
		slices.Sort(adj[i])
	}
	return adj
}

// splitBridges splits a connected group wherever one member alone joins
// two parts of two or more members each: the parts become groups of their
// own, and the member goes with the part its latest answers share the
// most agents with (the part it links to most, when its latest answers
// share none); lone members that hung on it alone go with it.
func splitBridges(group []int, adj [][]int, members []Member, sets [][]netip.Addr) [][]int {
	var out [][]int
	queue := [][]int{group}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		parts, cut := bridge(g, adj, members)
		if parts == nil {
			out = append(out, g)
			continue
		}
		best, bestScore := -1, [3]int{}
		var loners []int
		for i, p := range parts {
			if len(p) < 2 {
				loners = append(loners, p...)
				continue
			}
			score := [3]int{latestShare(members[cut].Latest, p, sets), linkCount(cut, p, adj), len(p)}
			if best < 0 || slices.Compare(score[:], bestScore[:]) > 0 {
				best, bestScore = i, score
			}
		}
		for i, p := range parts {
			switch {
			case len(p) < 2:
				continue
			case i == best:
				p = append(append(p, cut), loners...)
			}
			queue = append(queue, p)
		}
	}
	return out
}

// latestShare counts the latest addresses that are agents of some member of part.
func latestShare(latest []netip.Addr, part []int, sets [][]netip.Addr) int {
	n := 0
	for _, a := range latest {
		for _, i := range part {
			if _, found := slices.BinarySearchFunc(sets[i], a, netip.Addr.Compare); found {
				n++
				break
			}
		}
	}
	return n
}

func linkCount(i int, part []int, adj [][]int) int {
	n := 0
	for _, j := range part {
		if _, found := slices.BinarySearch(adj[i], j); found {
			n++
		}
	}
	return n
}

// bridge finds, in name order, the first member of g whose removal leaves
// at least two parts of two or more members, and returns the parts and
// the member; nil when there is none.
func bridge(g []int, adj [][]int, members []Member) ([][]int, int) {
	if len(g) < 5 { // two parts of two, and the member between them
		return nil, -1
	}
	in := make(map[int]bool, len(g))
	for _, i := range g {
		in[i] = true
	}
	cuts := articulation(g, adj, in)
	slices.SortFunc(cuts, func(a, b int) int { return strings.Compare(members[a].Domain, members[b].Domain) })
	for _, c := range cuts {
		var parts [][]int
		seen := map[int]bool{c: true}
		big := 0
		for _, start := range g {
			if seen[start] {
				continue
			}
			part := []int{start}
			seen[start] = true
			for k := 0; k < len(part); k++ {
				for _, j := range adj[part[k]] {
					if in[j] && !seen[j] {
						seen[j] = true
						part = append(part, j)
					}
				}
			}
			if len(part) >= 2 {
				big++
			}
			parts = append(parts, part)
		}
		if big >= 2 {
			return parts, c
		}
	}
	return nil, -1
}

// articulation returns the members of the connected group g whose removal
// disconnects it (Hopcroft and Tarjan's depth-first search).
func articulation(g []int, adj [][]int, in map[int]bool) []int {
	depth := make(map[int]int, len(g))
	low := make(map[int]int, len(g))
	var cuts []int
	var visit func(v, parent, d int)
	visit = func(v, parent, d int) {
		depth[v], low[v] = d, d
		children, isCut := 0, false
		for _, w := range adj[v] {
			if !in[w] || w == parent {
				continue
			}
			if _, ok := depth[w]; ok {
				low[v] = min(low[v], depth[w])
				continue
			}
			visit(w, v, d+1)
			children++
			low[v] = min(low[v], low[w])
			if parent >= 0 && low[w] >= d {
				isCut = true
			}
		}
		if parent < 0 && children > 1 || isCut {
			cuts = append(cuts, v)
		}
	}
	visit(g[0], -1, 0)
	return cuts
}
