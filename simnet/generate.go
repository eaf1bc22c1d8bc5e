package simnet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Sizes of the world's networks.
const (
	botnetSystems = 60 // "botnet host" ISPs the flux pools draw from
	stableTTL     = 86400
)

// infra is a DNS hosting zone and its name-server host names.
type infra struct {
	zone  string
	hosts []string
}

// cdnProvider is a CDN: its zone and its one or two networks.
type cdnProvider struct {
	zone    string
	systems []*autonomousSystem
}

// generator builds a model from a seed. Every part of the world draws from
// its own random stream, derived from the seed and a tag, so changing one
// class's count leaves the others' names and pools alone (except where a
// name collides).
type generator struct {
	seed         uint64
	m            *model
	names        names
	botnet       []*autonomousSystem
	hosting      []*autonomousSystem
	bulletproof  []infra
	dnsProviders []infra
	cdns         []cdnProvider
	volunteers   []*autonomousSystem // public-pool servers' networks, made on first use
	brands       map[string]bool
	domains      []Domain
	start        time.Time // the world's simulated start
	fluxEnds     time.Time // when flux stops (zero: never)
	// decoys are addresses of the shared-address hard negatives that every
	// flux network's pool also holds; networks are the networks made.
	decoys   []netip.Addr
	networks []fluxNetwork
}

// generate builds the world described by cfg (with defaults applied).
func generate(cfg Config) (*model, []Domain) {
	g := &generator{
		seed: uint64(cfg.Seed),
		m: &model{
			seed:        mix(uint64(cfg.Seed)),
			space:       newAddressSpace(),
			nodes:       make(map[string]*node),
			zones:       map[string]bool{".": true},
			ents:        make(map[string]bool),
			broken:      make(map[string]int),
			delegations: make(map[string]*nsSet),
			from:        make(map[string]time.Time),
		},
		names:  make(names),
		brands: make(map[string]bool),
		start:  cfg.Start,
	}
	if cfg.FluxEndsAfter > 0 {
		g.fluxEnds = cfg.Start.Add(cfg.FluxEndsAfter)
	}
	g.addTLDs(netip.MustParseAddr(cfg.Listen).Unmap())
	g.addSystems()
	g.addInfrastructure()
	g.addCDNEdges()
	// Each kind in turn, in this order: the hard cases come last, so that
	// they leave the names and networks of the kinds above as they were
	// before they existed, and each new kind goes at the end.
	for _, kind := range []struct {
		n   int
		add func(i int)
	}{
		{cfg.SingleFlux, func(i int) { g.addFlux(i, false) }},
		{cfg.DoubleFlux, func(i int) { g.addFlux(i, true) }},
		{cfg.Benign, g.addBenign},
		{cfg.Broken, g.addBroken},
		{cfg.GeoDNS, g.addGeo},
		{cfg.Pools, g.addPool},
		{cfg.Migrations, g.addMigration},
		{cfg.SlowFlux, g.addSlowFlux},
		{cfg.NarrowFlux, g.addNarrowFlux},
		{cfg.BigCDNs, g.addBigCDN},
		{cfg.SharedHosting, g.addSharedHosting},
		{cfg.LoadBalancers, g.addLoadBalancer},
		// The shared-address negatives before the networks, whose pools
		// hold one of their addresses each.
		{cfg.SharedEdges, g.addSharedEdge},
		{cfg.Parking, g.addParking},
		{cfg.FluxNetworks, g.addFluxNetwork},
	} {
		for i := range kind.n {
			kind.add(i)
		}
	}
	g.addDelegations()
	g.addEmptyNonTerminals()
	slices.SortFunc(g.domains, func(a, b Domain) int { return strings.Compare(a.Name, b.Name) })
	return g.m, g.domains
}

// rng returns the random stream for part i of the world tagged tag.
func (g *generator) rng(tag string, i int) *rand.Rand {
	h := mix(mix(g.seed^hashString(tag)) ^ uint64(i))
	return rand.New(rand.NewPCG(h, mix(h)))
}

// brand returns a made-up brand no other network of the world has.
func (g *generator) brand(r *rand.Rand) string {
	for {
		if b := brand(r); !g.brands[b] {
			g.brands[b] = true
			return b
		}
	}
}

// addTLDs makes the TLD zones, each served by a.nic and b.nic, whose
// addresses are the registry's (the world's listen address).
func (g *generator) addTLDs(registry netip.Addr) {
	for _, tld := range tlds {
		g.names.take(tld)
		var hosts []string
		for _, h := range []string{"a.nic." + tld, "b.nic." + tld} {
			g.names.take(h)
			set := &addrSet{pool: []netip.Addr{registry}, ttl: parentTTL}
			if registry.Is4() {
				g.m.nodes[h] = &node{a: set}
			} else {
				g.m.nodes[h] = &node{aaaa: set}
			}
			hosts = append(hosts, h)
		}
		g.zoneApex(tld, hosts, parentTTL)
	}
}

func (g *generator) addSystems() {
	r := g.rng("systems", 0)
	for range botnetSystems {
		org := g.brand(r) + " " + ispSuffixes[r.IntN(len(ispSuffixes))]
		g.botnet = append(g.botnet, g.m.space.add(r, roleBotnet, org, "", 1+r.IntN(3)))
	}
	for _, cc := range []string{"RU", "NL"} {
		g.m.space.add(r, roleBulletproof, g.brand(r)+" Hosting Ltd", cc, 1)
	}
	for _, n := range []int{2, 1} { // one CDN with two networks, one with one
		org := g.brand(r) + " Edge Networks"
		var c cdnProvider
		for range n {
			c.systems = append(c.systems, g.m.space.add(r, roleCDN, org, "US", 2))
		}
		g.cdns = append(g.cdns, c)
	}
	for range 5 {
		org := g.brand(r) + " " + hostingSuffixes[r.IntN(len(hostingSuffixes))]
		g.hosting = append(g.hosting, g.m.space.add(r, roleHosting, org, "", 1))
	}
}

// zoneFor returns a fresh zone named after the brand of as, e.g. "brand-dns.test.".
func (g *generator) zoneFor(r *rand.Rand, as *autonomousSystem, suffix string) string {
	b := strings.ToLower(strings.Fields(as.org)[0])
	return g.names.unique(func() string {
		if g.names[b+suffix] {
			b = strings.ToLower(brand(r))
		}
		return b + suffix
	})
}

// addInfrastructure creates the bulletproof and benign DNS hosting zones
// and the CDN zones, each served by fixed name servers of its own.
func (g *generator) addInfrastructure() {
	r := g.rng("infrastructure", 0)
	for _, as := range g.m.space.systems {
		if as.role == roleBulletproof {
			zone := g.zoneFor(r, as, "-dns.test.")
			g.bulletproof = append(g.bulletproof, infra{zone, g.fixedHosts(r, zone, 4, as, false)})
		}
	}
	for _, as := range g.hosting[:3] {
		zone := g.zoneFor(r, as, "-dns.test.")
		g.dnsProviders = append(g.dnsProviders, infra{zone, g.fixedHosts(r, zone, 3, as, true)})
	}
	for i := range g.cdns {
		c := &g.cdns[i]
		c.zone = g.zoneFor(r, c.systems[0], "cdn.test.")
		g.fixedHosts(r, c.zone, 2, c.systems[0], true)
		c.zone = "edge." + c.zone
		g.names.take(c.zone)
	}
}

// addCDNEdges picks the few prefixes each CDN network serves its edges
// from. It draws from a stream of its own, so the networks and names made
// before it stay as they were.
func (g *generator) addCDNEdges() {
	r := g.rng("cdn-edges", 0)
	for _, c := range g.cdns {
		for _, as := range c.systems {
			as.pickEdges(r, 2+r.IntN(3))
		}
	}
}

// fixedHosts makes zone a zone served by ns1..nsN.zone, each with one fixed
// address in as (and one IPv6 address if v6), and returns the host names.
func (g *generator) fixedHosts(r *rand.Rand, zone string, n int, as *autonomousSystem, v6 bool) []string {
	var hosts []string
	for i := range n {
		h := fmt.Sprintf("ns%d.%s", i+1, zone)
		g.names.take(h)
		nd := &node{a: &addrSet{pool: []netip.Addr{as.host(r, false)}, ttl: stableTTL}}
		if v6 {
			nd.aaaa = &addrSet{pool: []netip.Addr{as.host(r, true)}, ttl: stableTTL}
		}
		g.m.nodes[h] = nd
		hosts = append(hosts, h)
	}
	g.zoneApex(zone, hosts[:2], stableTTL)
	return hosts
}

// zoneApex makes name a zone apex with the given NS RRset and returns its node.
func (g *generator) zoneApex(name string, ns []string, ttl uint32) *node {
	n := &node{soa: true, ns: &nsSet{names: ns, ttl: ttl}}
	g.m.nodes[name] = n
	g.m.zones[name] = true
	return n
}

// siteName returns a fresh seed-like domain name (FQDN).
func (g *generator) siteName(r *rand.Rand) string {
	return g.names.unique(func() string { return siteLabel(r) + "." + siteTLD(r) + "." })
}

// pool draws n distinct addresses spread over systems, every system getting
// at least one while n allows.
func pool(r *rand.Rand, n int, systems []*autonomousSystem, v6 bool) []netip.Addr {
	return drawDistinct(r, n, systems, func(as *autonomousSystem) netip.Addr { return as.host(r, v6) })
}

// edgePool is pool drawing from the systems' CDN edge prefixes only.
func edgePool(r *rand.Rand, n int, systems []*autonomousSystem, v6 bool) []netip.Addr {
	return drawDistinct(r, n, systems, func(as *autonomousSystem) netip.Addr { return as.edgeHost(r, v6) })
}

// drawDistinct draws n distinct addresses with draw, from the systems in
// turn while every system has none, then from systems at random.
func drawDistinct(r *rand.Rand, n int, systems []*autonomousSystem, draw func(*autonomousSystem) netip.Addr) []netip.Addr {
	seen := make(map[netip.Addr]bool, n)
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		as := systems[r.IntN(len(systems))]
		if len(out) < len(systems) {
			as = systems[len(out)]
		}
		if a := draw(as); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// addFlux adds single-flux domain i, or double-flux domain i if double.
func (g *generator) addFlux(i int, double bool) {
	class, kind := ClassSingleFlux, KindFluxA
	if double {
		class, kind = ClassDoubleFlux, KindFluxNSAddr
		if i%2 == 1 {
			kind = KindFluxNSName
		}
	}
	r := g.rng(class, i)
	size := 200 + r.IntN(401)
	if double {
		size = 300 + r.IntN(301)
	}
	name := g.siteName(r)
	systems := sample(r, g.botnet, 20, 35)
	ttl := uint32(30 + r.IntN(151))
	n := &node{a: &addrSet{pool: pool(r, size, systems, false), ttl: ttl, mode: pickSubset, min: 4, max: 10}}
	if r.IntN(2) == 0 {
		n.aaaa = &addrSet{pool: pool(r, size/4, systems, true), ttl: ttl, mode: pickSubset, min: 2, max: 6}
	}
	// Name-server hosts of double flux resolve into the same botnet.
	hostTTL := uint32(60 + r.IntN(241))
	fluxHost := func(h string) {
		g.m.nodes[h] = &node{a: g.endFlux(&addrSet{pool: n.a.pool, ttl: hostTTL, mode: pickSubset, min: 1, max: 3})}
	}
	g.endFlux(n.a)
	g.endFlux(n.aaaa)
	switch kind {
	case KindFluxA:
		n.ns = g.bulletproofNS(r)
	case KindFluxNSAddr:
		var hosts []string
		for k := range 4 {
			h := fmt.Sprintf("ns%d.%s", k+1, name)
			g.names.take(h)
			fluxHost(h)
			hosts = append(hosts, h)
		}
		n.ns = &nsSet{names: hosts, ttl: 3600}
	case KindFluxNSName:
		var hosts []string
		for range 3 + r.IntN(2) {
			zone := g.siteName(r)
			for k := range 4 {
				h := fmt.Sprintf("ns%d.%s", k+1, zone)
				g.names.take(h)
				fluxHost(h)
				hosts = append(hosts, h)
			}
			g.zoneApex(zone, []string{hosts[len(hosts)-4], hosts[len(hosts)-3]}, 3600)
		}
		n.ns = &nsSet{names: hosts, ttl: 300, min: 2, max: 4}
	}
	n.soa = true
	g.m.nodes[name] = n
	g.m.zones[name] = true
	g.addDomain(name, class, kind, ttl, n.a, n.aaaa)
}

// endFlux makes a flux set settle on its first address when the world's
// flux ends (Config.FluxEndsAfter); it returns s.
func (g *generator) endFlux(s *addrSet) *addrSet {
	if s != nil && !g.fluxEnds.IsZero() {
		s.next, s.until = &addrSet{pool: s.pool[:1], ttl: 300}, g.fluxEnds
	}
	return s
}

// bulletproofNS returns a stable NS set of two name servers of one of the
// bulletproof DNS hosters.
func (g *generator) bulletproofNS(r *rand.Rand) *nsSet {
	bp := g.bulletproof[r.IntN(len(g.bulletproof))]
	j := 2 * r.IntN(len(bp.hosts)/2)
	return &nsSet{names: bp.hosts[j : j+2], ttl: stableTTL}
}

// addBenign adds benign domain i: a CDN customer, round robin or stable.
func (g *generator) addBenign(i int) {
	r := g.rng(ClassBenign, i)
	dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
	zone := g.siteName(r)
	apex := g.zoneApex(zone, dnsp.hosts[:2], stableTTL)
	switch i % 3 {
	case 0:
		// The customer's www name is an alias into the CDN's zone.
		c := g.cdns[r.IntN(len(g.cdns))]
		label, _, _ := cut(zone)
		edge := g.names.unique(func() string { return fmt.Sprintf("%s-%04x.%s", label, r.IntN(1<<16), c.zone) })
		// Hundreds of edge addresses, all in the CDN's few edge prefixes.
		size := 200 + r.IntN(201)
		e := &node{
			a:    &addrSet{pool: edgePool(r, size, c.systems, false), ttl: 20, mode: pickRegion, min: 2, max: 4},
			aaaa: &addrSet{pool: edgePool(r, size/3, c.systems, true), ttl: 20, mode: pickRegion, min: 1, max: 2},
		}
		g.m.nodes[edge] = e
		www := "www." + zone
		g.names.take(www)
		g.m.nodes[www] = &node{cname: edge, cnameTTL: 300}
		g.addDomain(www, ClassBenign, KindCDN, 20, e.a, e.aaaa)
	case 1:
		as := g.hosting[r.IntN(len(g.hosting))]
		apex.a = &addrSet{pool: pool(r, 3+r.IntN(3), []*autonomousSystem{as}, false), ttl: 300, mode: pickShuffle}
		g.addDomain(zone, ClassBenign, KindRoundRobin, 300, apex.a, nil)
	default:
		as := g.hosting[r.IntN(len(g.hosting))]
		apex.a = &addrSet{pool: pool(r, 1+r.IntN(2), []*autonomousSystem{as}, false), ttl: 3600}
		if r.IntN(2) == 0 {
			apex.aaaa = &addrSet{pool: pool(r, 1, []*autonomousSystem{as}, true), ttl: 3600}
		}
		g.addDomain(zone, ClassBenign, KindStable, 3600, apex.a, apex.aaaa)
	}
}

// addBroken adds broken domain i: NXDOMAIN, SERVFAIL or NODATA.
func (g *generator) addBroken(i int) {
	r := g.rng(ClassBroken, i)
	name := g.siteName(r)
	switch i % 3 {
	case 0:
		g.m.broken[name] = dns.RcodeNameError
		g.addDomain(name, ClassBroken, KindNXDomain, negativeTTL, nil, nil)
	case 1:
		g.m.broken[name] = dns.RcodeServerFailure
		g.addDomain(name, ClassBroken, KindServfail, 0, nil, nil)
	default:
		dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
		g.zoneApex(name, dnsp.hosts[:2], stableTTL)
		g.addDomain(name, ClassBroken, KindNoData, negativeTTL, nil, nil)
	}
}

// addDelegations fills the parent zones: every zone one label below a TLD
// is delegated with its own NS RRset (at parentTTL when the set is stable),
// and every servfail domain to two name servers that do not serve it.
func (g *generator) addDelegations() {
	for zone := range g.m.zones {
		_, parent, _ := cut(zone)
		n := g.m.nodes[zone]
		if !isTLD(parent) || n == nil || n.ns == nil {
			continue
		}
		// (A zone delegated later is refused by parent until then.)
		ns := *n.ns
		if ns.max == 0 {
			ns.ttl = parentTTL
		}
		g.m.delegations[zone] = &ns
	}
	for name, rcode := range g.m.broken {
		if rcode == dns.RcodeServerFailure {
			r := g.rng("lame "+name, 0)
			dnsp := g.dnsProviders[r.IntN(len(g.dnsProviders))]
			g.m.delegations[name] = &nsSet{names: dnsp.hosts[:2], ttl: parentTTL}
		}
	}
}

func (g *generator) addDomain(fqdn, class, kind string, ttl uint32, sets ...*addrSet) {
	d := Domain{Name: strings.TrimSuffix(fqdn, "."), Class: class, Kind: kind, TTL: ttl}
	asns := make(map[uint32]bool)
	for _, s := range sets {
		if s == nil {
			continue
		}
		d.Addresses += len(s.pool)
		for _, a := range s.pool {
			if as, ok := g.m.space.lookup(a); ok {
				asns[as.number] = true
			}
		}
	}
	d.ASNs = len(asns)
	g.domains = append(g.domains, d)
}

// addEmptyNonTerminals records every ancestor of an owner name that owns
// nothing itself, so that it answers NODATA rather than NXDOMAIN.
func (g *generator) addEmptyNonTerminals() {
	for name := range g.m.nodes {
		for _, p := range ancestors(name) {
			if g.m.nodes[p] == nil {
				g.m.ents[p] = true
			}
		}
	}
}

// ancestors returns the proper ancestors of an FQDN, excluding the root.
func ancestors(name string) []string {
	var out []string
	for _, p, ok := cut(name); ok && p != "."; _, p, ok = cut(p) {
		out = append(out, p)
	}
	return out
}
