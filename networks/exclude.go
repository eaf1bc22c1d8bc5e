package networks

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// AddrStats counts, for the safeguards, which addresses the domains not
// judged flux resolved to: whether any of them was judged benign, and how
// many there were. It holds a Bloom filter and a count-min sketch of a
// size fixed when it is made, so a run over a million domains costs a few
// megabytes whatever their addresses; both only ever overstate (an
// address may read as benign or as shared when it is not, never the
// reverse), so their errors can only leave an agent out, never let a
// shared address link two networks. The zero value and nil record nothing
// and exclude nothing.
type AddrStats struct {
	benign []uint64  // Bloom filter bits
	counts [][]uint8 // count-min rows, saturating
	mask   uint64    // row width − 1 (a power of two); bits in benign − 1 likewise
	bmask  uint64
}

// statHashes is the number of hash functions of the Bloom filter and rows
// of the count-min sketch.
const statHashes = 4

// NewAddrStats returns stats sized for about n distinct addresses: with
// n of them recorded once each, an address reads as benign when it is
// not a few times in a thousand (16 bits an address, 4 hashes), and its
// count is overstated by three or more about once in twenty-five thousand
// (a row of n counters: the noise in a counter is about Poisson(1), and
// the least of four rows counts).
func NewAddrStats(n int) *AddrStats {
	n = max(n, 1024)
	width := uint64(1) << bits.Len64(uint64(n)-1) // ≥ n
	s := &AddrStats{mask: width - 1, benign: make([]uint64, 16*width/64), bmask: 16*width - 1}
	s.counts = make([][]uint8, statHashes)
	for i := range s.counts {
		s.counts[i] = make([]uint8, width)
	}
	return s
}

// hashes returns the statHashes hashes of a (double hashing of two
// SplitMix64-mixed halves).
func hashes(a netip.Addr) [statHashes]uint64 {
	b := a.Unmap().As16()
	h1 := mix(binary.BigEndian.Uint64(b[:8]) ^ mix(binary.BigEndian.Uint64(b[8:])))
	h2 := mix(h1^0x9e3779b97f4a7c15) | 1
	var out [statHashes]uint64
	for i := range out {
		out[i] = h1 + uint64(i)*h2
	}
	return out
}

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Add records one domain that is not flux and its distinct addresses;
// benign says the classifier judged it benign.
func (s *AddrStats) Add(addrs []netip.Addr, benign bool) {
	if s == nil || s.counts == nil {
		return
	}
	for _, a := range addrs {
		hs := hashes(a)
		for i, h := range hs {
			row := s.counts[i]
			if c := &row[h&s.mask]; *c < 255 {
				*c++
			}
			if benign {
				bit := (h >> 7) & s.bmask
				s.benign[bit/64] |= 1 << (bit % 64)
			}
		}
	}
}

// Benign reports whether a domain judged benign may have resolved to a.
func (s *AddrStats) Benign(a netip.Addr) bool {
	if s == nil || s.counts == nil {
		return false
	}
	for _, h := range hashes(a) {
		bit := (h >> 7) & s.bmask
		if s.benign[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// NonFlux returns at least the number of domains not judged flux that
// resolved to a.
func (s *AddrStats) NonFlux(a netip.Addr) int {
	if s == nil || s.counts == nil {
		return 0
	}
	n := 255
	for i, h := range hashes(a) {
		n = min(n, int(s.counts[i][h&s.mask]))
	}
	return n
}

// Excluded returns the safeguards' rule as a function: a is not an agent
// when a benign domain resolved to it or more than maxNonFlux domains not
// judged flux did.
func (s *AddrStats) Excluded(maxNonFlux int) func(netip.Addr) bool {
	return func(a netip.Addr) bool { return s.Benign(a) || s.NonFlux(a) > maxNonFlux }
}
