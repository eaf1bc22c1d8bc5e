package simnet

import (
	"fmt"
	"net/netip"
	"time"
)

// The hard cases: benign names that look like flux on some feature (geo
// DNS, public pools, hosting migrations, big CDNs without a CNAME, shared
// hosting, load balancers) and flux that keeps some feature low (slow
// flux, narrow flux). Each domain draws from its own stream,
// tagged with its kind, and they are generated after every other kind.

const (
	geoRegions       = 3  // vantage v is in geo region v mod geoRegions
	volunteerSystems = 48 // networks the public pools' volunteer servers sit in
	poolTTL          = 150
	slowFluxHold     = 4 // a slow-flux answer lasts this many TTLs
)

// addGeo adds geo-DNS site i: its apex answers each region of vantages its
// own 2–4 fixed addresses, all in the one or two networks of one hosting
// provider, TTL 60.
func (g *generator) addGeo(i int) {
	r := g.rng(KindGeo, i)
	org := g.brand(r) + " " + hostingSuffixes[r.IntN(len(hostingSuffixes))]
	var systems []*autonomousSystem
	for _, cc := range []string{"US", "DE"}[:1+r.IntN(2)] {
		systems = append(systems, g.m.space.add(r, roleHosting, org, cc, 1))
	}
	zone := g.siteName(r)
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	apex := g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
	set := &addrSet{ttl: 60, mode: pickGeo}
	seen := make(map[netip.Addr]bool)
	for reg := range geoRegions {
		as := systems[reg%len(systems)]
		var share []netip.Addr
		for n := 2 + r.IntN(3); len(share) < n; {
			if a := as.host(r, false); !seen[a] {
				seen[a] = true
				share = append(share, a)
			}
		}
		set.regions = append(set.regions, share)
		set.pool = append(set.pool, share...)
	}
	apex.a = set
	g.addDomain(zone, ClassBenign, KindGeo, set.ttl, set)
}

// addPool adds public pool i, like pool.ntp.org: hundreds of volunteer
// servers in 32–48 networks of many countries, 4 of them at random per
// answer, TTL 150. Only an allowlist tells it from flux.
func (g *generator) addPool(i int) {
	r := g.rng(KindPool, i)
	systems := sample(r, g.volunteerNetworks(), 32, volunteerSystems)
	var zone, name string
	if i%2 == 0 { // pool.north-time.test
		zone = g.names.unique(func() string { return nameHeads[r.IntN(len(nameHeads))] + "-time." + siteTLD(r) + "." })
		name = "pool." + zone
	} else { // 2.pool.cedarclock.test
		zone = g.names.unique(func() string {
			return nameHeads[r.IntN(len(nameHeads))] + timeWords[r.IntN(len(timeWords))] + "." + siteTLD(r) + "."
		})
		name = fmt.Sprintf("%d.pool.%s", r.IntN(4), zone)
	}
	g.names.take(name)
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
	set := &addrSet{pool: pool(r, 250+r.IntN(251), systems, false), ttl: poolTTL, mode: pickSubset, min: 4, max: 4}
	g.m.nodes[name] = &node{a: set}
	g.addDomain(name, ClassBenign, KindPool, set.ttl, set)
	g.domains[len(g.domains)-1].Allowlisted = true
}

// volunteerNetworks returns the networks of the public pools' servers,
// making them on first use from a stream of their own.
func (g *generator) volunteerNetworks() []*autonomousSystem {
	if g.volunteers == nil {
		r := g.rng("volunteers", 0)
		for range volunteerSystems {
			org := g.brand(r) + " " + volunteerSuffixes[r.IntN(len(volunteerSuffixes))]
			g.volunteers = append(g.volunteers, g.m.space.add(r, roleVolunteer, org, "", 1+r.IntN(2)))
		}
	}
	return g.volunteers
}

// addMigration adds hosting migration i: two fixed addresses in one hosting
// network until a switch 10–15 simulated minutes after the world's start,
// two fixed addresses in another network from then on; TTL 300. (Early
// enough that a crawl of 20 minutes sees it even through 5-minute caches.)
func (g *generator) addMigration(i int) {
	r := g.rng(KindMigration, i)
	zone := g.siteName(r)
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	apex := g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
	x := r.IntN(len(g.hosting))
	y := (x + 1 + r.IntN(len(g.hosting)-1)) % len(g.hosting)
	switchAt := g.start.Add(10*time.Minute + time.Duration(r.IntN(301))*time.Second)
	after := &addrSet{pool: pool(r, 2, g.hosting[y:y+1], false), ttl: 300}
	before := &addrSet{pool: pool(r, 2, g.hosting[x:x+1], false), ttl: 300, next: after, until: switchAt}
	apex.a = before
	g.addDomain(zone, ClassBenign, KindMigration, before.ttl, before, after)
}

// addSlowFlux adds slow-flux domain i: a flux pool in 20–35 botnet networks
// whose answer (5–8 addresses, each in a different network) changes only
// every slowFluxHold TTLs; TTL 60–120, stable name servers.
func (g *generator) addSlowFlux(i int) {
	r := g.rng(KindSlowFlux, i)
	name := g.siteName(r)
	systems := sample(r, g.botnet, 20, 35)
	ttl := uint32(60 + r.IntN(61))
	set := &addrSet{pool: pool(r, 200+r.IntN(201), systems, false), ttl: ttl, mode: pickSpread, min: 5, max: 8, hold: slowFluxHold}
	for _, a := range set.pool {
		as, _ := g.m.space.lookup(a)
		set.nets = append(set.nets, as.number)
	}
	g.fluxApex(name, set, g.bulletproofNS(r))
	g.addDomain(name, ClassSingleFlux, KindSlowFlux, ttl, set)
}

// addNarrowFlux adds narrow-flux domain i: flux confined to three large
// residential ISPs of 3–6 /16s each, 150–300 addresses spread over their
// /16s, a fresh 4–8 of them every TTL (30–120 s), stable name servers.
func (g *generator) addNarrowFlux(i int) {
	r := g.rng(KindNarrowFlux, i)
	var systems []*autonomousSystem
	for range 3 {
		org := g.brand(r) + " " + ispSuffixes[r.IntN(len(ispSuffixes))]
		systems = append(systems, g.m.space.add(r, roleBotnet, org, "", 3+r.IntN(4)))
	}
	name := g.siteName(r)
	ttl := uint32(30 + r.IntN(91))
	set := &addrSet{pool: pool(r, 150+r.IntN(151), systems, false), ttl: ttl, mode: pickSubset, min: 4, max: 8}
	g.fluxApex(name, set, g.bulletproofNS(r))
	g.addDomain(name, ClassSingleFlux, KindNarrowFlux, ttl, set)
}

// fluxApex makes name a zone apex with the given A data and NS set.
func (g *generator) fluxApex(name string, a *addrSet, ns *nsSet) {
	g.m.nodes[name] = &node{a: a, ns: ns, soa: true}
	g.m.zones[name] = true
}

// addBigCDN adds big CDN i: a site answered straight from a large
// provider's edges (no CNAME into a CDN zone), 300–600 addresses over the
// 8–12 /16s of each of its 1–2 ASNs, a fresh 4–8 of them every TTL (20–60 s):
// each answer spreads over several /16s, as flux does, but within one
// provider.
func (g *generator) addBigCDN(i int) {
	r := g.rng(KindBigCDN, i)
	org := g.brand(r) + " " + hostingSuffixes[r.IntN(len(hostingSuffixes))]
	var systems []*autonomousSystem
	for _, cc := range []string{"US", "NL"}[:1+r.IntN(2)] {
		systems = append(systems, g.m.space.add(r, roleHosting, org, cc, 8+r.IntN(5)))
	}
	zone := g.siteName(r)
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	apex := g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
	set := &addrSet{pool: pool(r, 300+r.IntN(301), systems, false), ttl: uint32(20 + r.IntN(41)), mode: pickSubset, min: 4, max: 8}
	apex.a = set
	g.addDomain(zone, ClassBenign, KindBigCDN, set.ttl, set)
}

// addSharedHosting adds shared-hosting group i: three sites whose apexes
// answer the same 1–2 addresses of one hosting network, TTL 3600.
func (g *generator) addSharedHosting(i int) {
	r := g.rng(KindSharedHosting, i)
	as := g.hosting[r.IntN(len(g.hosting))]
	addrs := pool(r, 1+r.IntN(2), []*autonomousSystem{as}, false)
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	for range 3 {
		zone := g.siteName(r)
		apex := g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
		set := &addrSet{pool: addrs, ttl: 3600}
		apex.a = set
		g.addDomain(zone, ClassBenign, KindSharedHosting, set.ttl, set)
	}
}

// addLoadBalancer adds DNS load balancer i: a site whose 8–16 servers sit in
// one hosting network, 2–4 of them in each answer, changing every TTL (30 s).
func (g *generator) addLoadBalancer(i int) {
	r := g.rng(KindLoadBalancer, i)
	org := g.brand(r) + " " + hostingSuffixes[r.IntN(len(hostingSuffixes))]
	as := g.m.space.add(r, roleHosting, org, "", 1+r.IntN(2))
	zone := g.siteName(r)
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	apex := g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
	set := &addrSet{pool: pool(r, 8+r.IntN(9), []*autonomousSystem{as}, false), ttl: 30, mode: pickSubset, min: 2, max: 4}
	apex.a = set
	g.addDomain(zone, ClassBenign, KindLoadBalancer, set.ttl, set)
}
