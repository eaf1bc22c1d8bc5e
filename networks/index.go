package networks

import (
	"net/netip"
)

// Index finds the known network whose agents a domain's addresses fall
// among: what lets a known network speed up detection. It is built from
// stored networks, whose agents the safeguards have already sifted. A nil
// *Index knows no network.
type Index struct {
	nets   []indexed
	agents map[netip.Addr][]int32 // agent (A or NS) → networks
}

type indexed struct {
	id     string
	agents int
	only   string // its domain, when it has one only
}

// NewIndex indexes the agents of nets.
func NewIndex(nets []Network) *Index {
	x := &Index{agents: map[netip.Addr][]int32{}}
	for i, n := range nets {
		in := indexed{id: n.ID, agents: len(n.Agents) + len(n.NSAgents)}
		if len(n.Domains) == 1 {
			in.only = n.Domains[0]
		}
		x.nets = append(x.nets, in)
		for _, list := range [][]netip.Addr{n.Agents, n.NSAgents} {
			for _, a := range list {
				if hs := x.agents[a]; len(hs) == 0 || hs[len(hs)-1] != int32(i) {
					x.agents[a] = append(hs, int32(i))
				}
			}
		}
	}
	return x
}

// Len returns the number of networks indexed.
func (x *Index) Len() int {
	if x == nil {
		return 0
	}
	return len(x.nets)
}

// Match is the network most of a domain's addresses are agents of.
type Match struct {
	Network string // its id; "" when none of the addresses is an agent
	// Seen is how many of the addresses are its agents, Agents how many
	// agents it has.
	Seen, Agents int
}

// Match returns the network holding the most of the addresses of domain
// (distinct) among its agents; ties go to the one with more agents, then
// the first stored. A network of domain alone is no evidence about it and
// is never its match.
func (x *Index) Match(domain string, addrs []netip.Addr) Match {
	if x == nil {
		return Match{}
	}
	count := map[int32]int{}
	for _, a := range addrs {
		for _, i := range x.agents[a] {
			if x.nets[i].only != domain {
				count[i]++
			}
		}
	}
	best := int32(-1)
	for i, n := range count {
		if best < 0 || n > count[best] || n == count[best] && (x.nets[i].agents > x.nets[best].agents ||
			x.nets[i].agents == x.nets[best].agents && i < best) {
			best = i
		}
	}
	if best < 0 {
		return Match{}
	}
	return Match{Network: x.nets[best].id, Seen: count[best], Agents: x.nets[best].agents}
}
