package simnet

import (
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// negativeTTL is the SOA minimum of every simulated zone: how long
// NXDOMAIN and NODATA answers are cached, in simulated seconds.
const negativeTTL = 300

// pickMode says how an address set turns its pool into one answer.
type pickMode uint8

const (
	pickAll     pickMode = iota // the whole pool in a fixed order
	pickShuffle                 // the whole pool, order changing every epoch
	pickSubset                  // min..max addresses of the pool, fresh every epoch
	pickRegion                  // like pickSubset, from the vantage's share of the pool
	pickGeo                     // the vantage's region's fixed addresses, order changing every epoch
	pickSpread                  // like pickSubset, every address from a different network
)

// addrSet is the A or AAAA data of one name.
type addrSet struct {
	pool     []netip.Addr
	ttl      uint32
	mode     pickMode
	min, max int

	// hold makes the answer change only every hold TTLs (zero or one: every TTL).
	hold int
	// regions are pickGeo's per-region addresses (pool is their union);
	// vantage v is in region v mod len(regions).
	regions [][]netip.Addr
	// nets are pickSpread's network numbers, one per pool address.
	nets []uint32
	// next, when set, replaces this set from simulated time until on.
	next  *addrSet
	until time.Time
}

// at returns the set in force at simulated time t.
func (s *addrSet) at(t time.Time) *addrSet {
	for s.next != nil && !t.Before(s.until) {
		s = s.next
	}
	return s
}

// period is how long, in simulated seconds, one answer of the set lasts:
// the epoch length of its rotation.
func (s *addrSet) period() uint32 { return s.ttl * uint32(max(s.hold, 1)) }

// rotates reports whether the set's answers change over time or between
// vantages (anything but a fixed list).
func (s *addrSet) rotates() bool { return s.mode != pickAll || s.next != nil }

// nsSet is the NS data of one name: all names, or min..max of them per epoch.
type nsSet struct {
	names    []string
	ttl      uint32
	min, max int // zero: all names, fixed
}

// node is one owner name of the world.
type node struct {
	cname    string // target, when the name is an alias
	cnameTTL uint32
	a, aaaa  *addrSet
	ns       *nsSet
	soa      bool // the name is a zone apex
}

// answer is what the world's authoritative data says about a name and
// type: an rcode, the records owned by the name (an RRset or a CNAME), and
// for negative answers the zone's SOA. ttl is how long a resolver may cache
// it, in simulated seconds; zero means not at all.
type answer struct {
	rcode int
	rrs   []dns.RR
	soa   dns.RR
	ttl   uint32
}

// cnameTarget returns the alias target if the answer is a CNAME.
func (a answer) cnameTarget() string {
	if len(a.rrs) == 1 {
		if c, ok := a.rrs[0].(*dns.CNAME); ok {
			return c.Target
		}
	}
	return ""
}

// model is the world's truth: read-only after generation, so lookup is a
// pure function of its arguments and safe for concurrent use.
type model struct {
	seed   uint64
	space  *addressSpace
	nodes  map[string]*node // owner names (FQDN, lower case)
	zones  map[string]bool  // zone apexes, "." and the TLDs included
	ents   map[string]bool  // empty non-terminals: ancestors of owner names
	broken map[string]int   // zone → rcode for every name at or below it
	// delegations are the parent zones' data: registered domain (one label
	// below a TLD) → its NS RRset as the registry holds it.
	delegations map[string]*nsSet
	// from holds the zones delegated only from a time on (a flux network's
	// newer domains): before it they and every name under them are
	// NXDOMAIN.
	from map[string]time.Time
}

// lookup answers name (FQDN, lower case) and qtype as the authoritative
// servers would at simulated time t, for vantage v. Rotating data changes
// every TTL: the epoch is the number of whole TTLs since the Unix epoch.
func (m *model) lookup(name string, qtype uint16, t time.Time, v int) answer {
	for z := name; ; {
		if rcode, ok := m.broken[z]; ok {
			if rcode == dns.RcodeNameError {
				return m.negative(rcode, name)
			}
			return answer{rcode: rcode}
		}
		if z == "." {
			break
		}
		_, z, _ = cut(z)
	}
	if !m.registered(name, t) {
		return m.unregistered(name)
	}
	n := m.nodes[name]
	if n == nil {
		if m.ents[name] {
			return m.negative(dns.RcodeSuccess, name)
		}
		return m.negative(dns.RcodeNameError, name)
	}
	if n.cname != "" {
		rr := &dns.CNAME{Hdr: header(name, dns.TypeCNAME, n.cnameTTL), Target: n.cname}
		return answer{rrs: []dns.RR{rr}, ttl: n.cnameTTL}
	}
	var rrs []dns.RR
	var ttl uint32
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		set := n.a
		if qtype == dns.TypeAAAA {
			set = n.aaaa
		}
		if set != nil {
			set = set.at(t)
			ttl = set.ttl
			for _, a := range m.addrs(name, qtype, set, t, v) {
				rrs = append(rrs, addrRR(name, a, ttl))
			}
		}
	case dns.TypeNS:
		if n.ns != nil {
			ttl = n.ns.ttl
			for _, host := range n.ns.pick(m.rand(name, qtype, epoch(t, ttl), v)) {
				rrs = append(rrs, &dns.NS{Hdr: header(name, dns.TypeNS, ttl), Ns: host})
			}
		}
	case dns.TypeSOA:
		if n.soa {
			soa := m.soa(name)
			return answer{rrs: []dns.RR{soa}, ttl: soa.Header().Ttl}
		}
	}
	if len(rrs) == 0 {
		return m.negative(dns.RcodeSuccess, name)
	}
	return answer{rrs: rrs, ttl: ttl}
}

// addrs returns the addresses set (in force at t) gives name for qtype
// at simulated time t and vantage v.
func (m *model) addrs(name string, qtype uint16, set *addrSet, t time.Time, v int) []netip.Addr {
	return set.pick(m.rand(name, qtype, epoch(t, set.period()), v), v)
}

// negative builds an NXDOMAIN or NODATA answer with the enclosing zone's SOA.
func (m *model) negative(rcode int, name string) answer {
	zone := name
	for !m.zones[zone] && zone != "." {
		_, zone, _ = cut(zone)
	}
	return m.negativeIn(rcode, zone)
}

// negativeIn builds an NXDOMAIN or NODATA answer with zone's SOA.
func (m *model) negativeIn(rcode int, zone string) answer {
	soa := m.soa(zone)
	soa.Header().Ttl = negativeTTL // RFC 2308: min(SOA TTL, SOA minimum)
	return answer{rcode: rcode, soa: soa, ttl: negativeTTL}
}

// soa returns the SOA record of zone.
func (m *model) soa(zone string) dns.RR {
	ns, mbox := "ns1."+zone, "hostmaster."+zone
	switch {
	case zone == ".":
		ns, mbox = "a.root-servers.test.", "nstld.root-servers.test."
	case isTLD(zone):
		ns = "a.nic." + zone
	}
	return &dns.SOA{
		Hdr: header(zone, dns.TypeSOA, 3600), Ns: ns, Mbox: mbox,
		Serial: 2026010101, Refresh: 7200, Retry: 900, Expire: 1209600, Minttl: negativeTTL,
	}
}

// pick returns this epoch's addresses for vantage v, drawing from r.
func (s *addrSet) pick(r *rand.Rand, v int) []netip.Addr {
	switch s.mode {
	case pickShuffle:
		out := append([]netip.Addr(nil), s.pool...)
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	case pickSubset:
		return sample(r, s.pool, s.min, s.max)
	case pickRegion:
		// The pool is split into regionCount shares; vantage v sees one.
		var share []netip.Addr
		for i := v % regionCount; i < len(s.pool); i += regionCount {
			share = append(share, s.pool[i])
		}
		return sample(r, share, s.min, s.max)
	case pickGeo:
		out := slices.Clone(s.regions[v%len(s.regions)])
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	case pickSpread:
		return s.spread(r)
	}
	return s.pool
}

// spread returns min..max addresses of the pool, in pool order, no two of
// them in the same network.
func (s *addrSet) spread(r *rand.Rand) []netip.Addr {
	k := s.min + r.IntN(s.max-s.min+1)
	used := make(map[uint32]bool, k)
	var chosen []int
	for _, i := range r.Perm(len(s.pool)) {
		if len(chosen) == k {
			break
		}
		if !used[s.nets[i]] {
			used[s.nets[i]] = true
			chosen = append(chosen, i)
		}
	}
	slices.Sort(chosen)
	out := make([]netip.Addr, len(chosen))
	for j, i := range chosen {
		out[j] = s.pool[i]
	}
	return out
}

// regionCount is how many regional shares a CDN pool is split into.
const regionCount = 4

// pick returns this epoch's name servers, drawing from r.
func (s *nsSet) pick(r *rand.Rand) []string {
	if s.max == 0 {
		return s.names
	}
	return sample(r, s.names, s.min, s.max)
}

// sample returns between lo and hi distinct elements of pool, in pool order.
func sample[T any](r *rand.Rand, pool []T, lo, hi int) []T {
	k := min(lo+r.IntN(hi-lo+1), len(pool))
	chosen := make(map[int]bool, k)
	for len(chosen) < k {
		chosen[r.IntN(len(pool))] = true
	}
	out := make([]T, 0, k)
	for i, x := range pool {
		if chosen[i] {
			out = append(out, x)
		}
	}
	return out
}

// epoch returns the number of whole ttl periods between the Unix epoch and t.
func epoch(t time.Time, ttl uint32) int64 {
	s, p := t.Unix(), int64(max(ttl, 1))
	e := s / p
	if s < 0 && s%p != 0 {
		e--
	}
	return e
}

// rand returns the random source for one RRset in one epoch at one vantage.
func (m *model) rand(name string, qtype uint16, epoch int64, v int) *rand.Rand {
	h := mix(m.seed ^ hashString(name))
	h = mix(h ^ uint64(qtype))
	h = mix(h ^ uint64(epoch))
	h = mix(h ^ uint64(v))
	return rand.New(rand.NewPCG(h, mix(h)))
}

// mix is the SplitMix64 finaliser.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func header(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

func addrRR(name string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: header(name, dns.TypeA, ttl), A: net.IP(a.AsSlice())}
	}
	return &dns.AAAA{Hdr: header(name, dns.TypeAAAA, ttl), AAAA: net.IP(a.AsSlice())}
}

// cut splits an FQDN into its first label and its parent ("." for a TLD).
func cut(name string) (label, parent string, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if i == len(name)-1 {
				return name[:i], ".", true
			}
			return name[:i], name[i+1:], true
		}
	}
	return name, ".", false
}
