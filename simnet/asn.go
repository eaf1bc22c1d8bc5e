package simnet

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
)

// asRole says what a simulated autonomous system hosts.
type asRole uint8

const (
	roleBotnet      asRole = iota // residential and mobile ISPs with compromised hosts
	roleBulletproof               // bulletproof hosting of the flux domains' name servers
	roleCDN                       // content delivery networks
	roleHosting                   // ordinary hosting of benign sites and their DNS
	roleVolunteer                 // networks of public-pool volunteers (universities, small hosters, homes)
)

// region is a regional Internet registry; it picks the IPv6 space of an AS.
type region uint8

const (
	arin region = iota
	ripe
	apnic
	lacnic
	afrinic
)

// countries are the ISO 3166 codes the simulated networks are registered in.
var countries = []struct {
	code   string
	region region
}{
	{"US", arin}, {"CA", arin},
	{"DE", ripe}, {"FR", ripe}, {"GB", ripe}, {"NL", ripe}, {"RU", ripe}, {"UA", ripe},
	{"PL", ripe}, {"RO", ripe}, {"TR", ripe}, {"IT", ripe}, {"ES", ripe}, {"SE", ripe},
	{"CN", apnic}, {"IN", apnic}, {"ID", apnic}, {"VN", apnic}, {"TH", apnic}, {"KR", apnic},
	{"JP", apnic}, {"PH", apnic}, {"PK", apnic}, {"MY", apnic},
	{"BR", lacnic}, {"AR", lacnic}, {"MX", lacnic}, {"CO", lacnic},
	{"ZA", afrinic}, {"NG", afrinic}, {"EG", afrinic}, {"KE", afrinic},
}

// autonomousSystem is one simulated network: IPv4 /16s and one IPv6 /32.
type autonomousSystem struct {
	number  uint32
	org     string
	country string
	role    asRole
	v4      []netip.Prefix
	v6      []netip.Prefix
	// edges are the few /24s and /48s inside v4 and v6 that a CDN network
	// serves its edge addresses from (see pickEdges).
	edges4, edges6 []netip.Prefix
}

// description is the AS_description column of the iptoasn table.
func (as *autonomousSystem) description() string {
	handle := strings.ToUpper(strings.Fields(as.org)[0]) + "-AS"
	return handle + " - " + as.org
}

// addressSpace holds every simulated AS and maps addresses back to them.
// It is built once and read-only afterwards.
type addressSpace struct {
	systems []*autonomousSystem
	byV4    map[[2]byte]*autonomousSystem // by the first two octets (/16)
	byV6    map[[4]byte]*autonomousSystem // by the first four bytes (/32)
	numbers map[uint32]bool
}

func newAddressSpace() *addressSpace {
	return &addressSpace{
		byV4:    make(map[[2]byte]*autonomousSystem),
		byV6:    make(map[[4]byte]*autonomousSystem),
		numbers: make(map[uint32]bool),
	}
}

// add creates an AS with a fresh number, n4 IPv4 /16s and one IPv6 /32.
// An empty country picks one at random.
func (s *addressSpace) add(r *rand.Rand, role asRole, org, country string, n4 int) *autonomousSystem {
	c := countries[r.IntN(len(countries))]
	if country != "" {
		for _, cc := range countries {
			if cc.code == country {
				c = cc
			}
		}
	}
	as := &autonomousSystem{number: s.freshNumber(r), org: org, country: c.code, role: role}
	for range n4 {
		as.v4 = append(as.v4, s.freshV4(r, as))
	}
	as.v6 = append(as.v6, s.freshV6(r, as, c.region))
	s.systems = append(s.systems, as)
	return as
}

// freshNumber draws an unused public AS number, either 16-bit (avoiding
// 23456 and the private and documentation ranges) or 32-bit as allocated
// by the registries.
func (s *addressSpace) freshNumber(r *rand.Rand) uint32 {
	for {
		var n uint32
		if r.IntN(3) == 0 {
			n = 131072 + r.Uint32N(270000)
		} else {
			n = 1000 + r.Uint32N(63000)
		}
		if n == 23456 || s.numbers[n] {
			continue
		}
		s.numbers[n] = true
		return n
	}
}

// reservedV4 reports whether the /16 a.b.0.0 overlaps special-purpose space.
func reservedV4(a, b byte) bool {
	switch {
	case a == 0, a == 10, a == 127, a >= 224:
		return true
	case a == 100 && b >= 64 && b < 128: // shared address space
		return true
	case a == 169 && b == 254, a == 172 && b >= 16 && b < 32, a == 192 && (b == 0 || b == 88 || b == 168):
		return true
	case a == 198 && (b == 18 || b == 19 || b == 51), a == 203 && b == 0:
		return true
	}
	return false
}

func (s *addressSpace) freshV4(r *rand.Rand, as *autonomousSystem) netip.Prefix {
	for {
		k := [2]byte{byte(1 + r.IntN(223)), byte(r.IntN(256))}
		if reservedV4(k[0], k[1]) || s.byV4[k] != nil {
			continue
		}
		s.byV4[k] = as
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{k[0], k[1], 0, 0}), 16)
	}
}

// v6Blocks are the first 16 bits of each registry's global unicast space.
var v6Blocks = map[region]uint16{arin: 0x2600, ripe: 0x2a00, apnic: 0x2400, lacnic: 0x2800, afrinic: 0x2c00}

func (s *addressSpace) freshV6(r *rand.Rand, as *autonomousSystem, reg region) netip.Prefix {
	for {
		hi := v6Blocks[reg] + uint16(r.IntN(16))
		lo := uint16(r.IntN(1 << 16))
		k := [4]byte{byte(hi >> 8), byte(hi), byte(lo >> 8), byte(lo)}
		if s.byV6[k] != nil {
			continue
		}
		s.byV6[k] = as
		var b [16]byte
		copy(b[:], k[:])
		return netip.PrefixFrom(netip.AddrFrom16(b), 32)
	}
}

// lookup returns the AS that a belongs to.
func (s *addressSpace) lookup(a netip.Addr) (*autonomousSystem, bool) {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		as, ok := s.byV4[[2]byte{b[0], b[1]}]
		return as, ok
	}
	b := a.As16()
	as, ok := s.byV6[[4]byte{b[0], b[1], b[2], b[3]}]
	return as, ok
}

// host draws a random host address of as: IPv4 avoids .0 and .255.
func (as *autonomousSystem) host(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		b := as.v6[r.IntN(len(as.v6))].Addr().As16()
		for i := 4; i < 16; i++ {
			b[i] = byte(r.IntN(256))
		}
		return netip.AddrFrom16(b)
	}
	b := as.v4[r.IntN(len(as.v4))].Addr().As4()
	b[2] = byte(r.IntN(256))
	b[3] = byte(1 + r.IntN(254))
	return netip.AddrFrom4(b)
}

// pickEdges chooses n distinct /24s inside the AS's IPv4 /16s and n /48s
// inside its IPv6 /32 for its CDN edges.
func (as *autonomousSystem) pickEdges(r *rand.Rand, n int) {
	for len(as.edges4) < n {
		b := as.v4[r.IntN(len(as.v4))].Addr().As4()
		b[2] = byte(r.IntN(256))
		if p := netip.PrefixFrom(netip.AddrFrom4(b), 24); !slices.Contains(as.edges4, p) {
			as.edges4 = append(as.edges4, p)
		}
	}
	for len(as.edges6) < n {
		b := as.v6[r.IntN(len(as.v6))].Addr().As16()
		b[4], b[5] = byte(r.IntN(256)), byte(r.IntN(256))
		if p := netip.PrefixFrom(netip.AddrFrom16(b), 48); !slices.Contains(as.edges6, p) {
			as.edges6 = append(as.edges6, p)
		}
	}
}

// edgeHost draws a random address of one of the AS's edge prefixes
// (pickEdges must have run): IPv4 avoids .0 and .255.
func (as *autonomousSystem) edgeHost(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		b := as.edges6[r.IntN(len(as.edges6))].Addr().As16()
		for i := 6; i < 16; i++ {
			b[i] = byte(r.IntN(256))
		}
		return netip.AddrFrom16(b)
	}
	b := as.edges4[r.IntN(len(as.edges4))].Addr().As4()
	b[3] = byte(1 + r.IntN(254))
	return netip.AddrFrom4(b)
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// writeTable writes the iptoasn table: start, end, AS number, country and
// description separated by tabs, IPv4 ranges then IPv6, sorted by start.
func (s *addressSpace) writeTable(w io.Writer) error {
	type row struct {
		p  netip.Prefix
		as *autonomousSystem
	}
	var rows []row
	for _, as := range s.systems {
		for _, p := range slices.Concat(as.v4, as.v6) {
			rows = append(rows, row{p, as})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return a.p.Addr().Compare(b.p.Addr()) })
	bw := bufio.NewWriter(w)
	for _, r := range rows {
		fmt.Fprintf(bw, "%s\t%s\t%d\t%s\t%s\n", r.p.Addr(), lastAddr(r.p), r.as.number, r.as.country, r.as.description())
	}
	return bw.Flush()
}
