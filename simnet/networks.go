package simnet

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Flux networks, and the benign names that share addresses as a network's
// domains share agents. A flux network is a pool of agents (compromised
// hosts in 20–35 botnet ISPs) that answers for several domains at once:
// each of its domains answers 1–2 of the pool's addresses every TTL, so
// one round through four vantages shows too few addresses to call it flux
// on its own, and two rounds do. Some domains start later in the run (not
// delegated until then, NXDOMAIN), so that a known network's new domains
// can be timed; one domain of every network but the first moved there from
// the network before it during the run. Every third network is double
// flux: its domains' name servers answer from the pool too.
//
// The hard negatives: a parking service whose one address answers for
// many parked domains, and a CDN edge whose few addresses answer for many
// benign sites (shared hosting is KindSharedHosting). The networks' pools
// each hold one address of each as a decoy (a parked or sinkholed answer,
// a front through the CDN), so that only the safeguards keep them from
// linking every network to every other.

const (
	networkStart  = 3 // domains of a network from the world's start
	parkedDomains = 6 // domains a parking service answers for
	edgeSites     = 6 // benign sites on one CDN edge
)

// fluxNetwork is one network as the generator keeps it while it makes the
// later networks.
type fluxNetwork struct {
	name string
	pool []netip.Addr
}

// addSharedEdge adds CDN edge group i: edgeSites benign sites whose apexes
// each answer 2 of the same 4 edge addresses of a CDN, TTL 60.
func (g *generator) addSharedEdge(i int) {
	r := g.rng(KindSharedEdge, i)
	c := g.cdns[r.IntN(len(g.cdns))]
	addrs := edgePool(r, 4, c.systems[:1], false)
	g.decoys = append(g.decoys, addrs[0])
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	for range edgeSites {
		zone := g.siteName(r)
		apex := g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
		apex.a = &addrSet{pool: addrs, ttl: 60, mode: pickSubset, min: 2, max: 2}
		g.addDomain(zone, ClassBenign, KindSharedEdge, 60, apex.a)
	}
}

// addParking adds parking service i: parkedDomains domains answering the
// service's one address (in one hosting network), TTL 3600.
func (g *generator) addParking(i int) {
	r := g.rng(KindParked, i)
	as := g.hosting[r.IntN(len(g.hosting))]
	addr := as.host(r, false)
	g.decoys = append(g.decoys, addr)
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	for range parkedDomains {
		zone := g.siteName(r)
		apex := g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
		apex.a = &addrSet{pool: []netip.Addr{addr}, ttl: 3600}
		g.addDomain(zone, ClassBenign, KindParked, 3600, apex.a)
	}
}

// addFluxNetwork adds flux network i and its domains.
func (g *generator) addFluxNetwork(i int) {
	r := g.rng(KindNetworkFlux, i)
	systems := sample(r, g.botnet, 20, 35)
	net := fluxNetwork{name: fmt.Sprintf("botnet-%d", i+1)}
	net.pool = append(pool(r, 120+r.IntN(81), systems, false), g.decoys...)
	double := i%3 == 2
	var prev *fluxNetwork
	if len(g.networks) > 0 {
		prev = &g.networks[len(g.networks)-1]
	}
	late := 1 + r.IntN(2)
	for k := range networkStart + late {
		name := g.siteName(r)
		ttl := uint32(60 + r.IntN(121))
		set := &addrSet{pool: net.pool, ttl: ttl, mode: pickSubset, min: 1, max: 2}
		d := Domain{Network: net.name}
		n := &node{a: set, soa: true}
		switch {
		case k == 0 && prev != nil:
			// It moved here from the network before, 8–14 minutes in.
			d.PreviousNetwork, d.MovesAt = prev.name, g.start.Add(8*time.Minute+time.Duration(r.IntN(361))*time.Second)
			n.a = &addrSet{pool: prev.pool, ttl: ttl, mode: pickSubset, min: 1, max: 2, next: g.endFlux(set), until: d.MovesAt}
		case k >= networkStart:
			// A newer domain: delegated 4–14 minutes in.
			d.Starts = g.start.Add(4*time.Minute + time.Duration(r.IntN(601))*time.Second)
			g.m.from[name] = d.Starts
			g.endFlux(set)
		default:
			g.endFlux(set)
		}
		class := ClassSingleFlux
		if double && d.PreviousNetwork == "" {
			class = ClassDoubleFlux
			var hosts []string
			for h := range 2 {
				host := fmt.Sprintf("ns%d.%s", h+1, name)
				g.names.take(host)
				g.m.nodes[host] = &node{a: g.endFlux(&addrSet{pool: net.pool, ttl: 300, mode: pickSubset, min: 1, max: 3})}
				hosts = append(hosts, host)
			}
			n.ns = &nsSet{names: hosts, ttl: 3600}
		} else {
			n.ns = g.bulletproofNS(r)
		}
		g.m.nodes[name] = n
		g.m.zones[name] = true
		if n.a != set {
			g.addDomain(name, class, KindNetworkFlux, ttl, n.a, set)
		} else {
			g.addDomain(name, class, KindNetworkFlux, ttl, set)
		}
		last := &g.domains[len(g.domains)-1]
		last.Network, last.PreviousNetwork, last.MovesAt, last.Starts = d.Network, d.PreviousNetwork, d.MovesAt, d.Starts
	}
	g.networks = append(g.networks, net)
}

// registered reports whether the zone at or above name is delegated at t:
// a newer domain of a flux network is not, before it starts.
func (m *model) registered(name string, t time.Time) bool {
	for z := name; z != "." && z != ""; {
		if from, ok := m.from[z]; ok && t.Before(from) {
			return false
		}
		_, z, _ = cut(z)
	}
	return true
}

// unregistered is the answer for a name under a zone not yet delegated:
// NXDOMAIN from its TLD.
func (m *model) unregistered(name string) answer {
	return m.negativeIn(dns.RcodeNameError, tldOf(name))
}
