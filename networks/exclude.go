package networks

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// StatsFor returns stats sized for a classification run over the given
// number of domains: about two distinct addresses a domain.
func StatsFor(domains int) *AddrStats { return NewAddrStats(2 * domains) }

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

// Merge adds what o recorded to s, as if s had recorded o's domains too:
// the counts add (saturating at 255) and the benign bits join. Stats of
// different widths merge at the narrower one: the wider is folded first,
// which keeps every count and bit an address reads (see fold), so the
// merge still only overstates. Merging the stats of the parts of a set of
// domains, all of one width, gives exactly the stats of the whole set:
// what lets the shards of a cluster count apart. o is not changed; a zero
// s becomes a copy of o, and a nil or zero o changes nothing.
func (s *AddrStats) Merge(o *AddrStats) {
	if o == nil || o.counts == nil {
		return
	}
	if s.counts == nil {
		*s = AddrStats{mask: o.mask, bmask: o.bmask, benign: make([]uint64, len(o.benign)), counts: make([][]uint8, statHashes)}
		for i := range s.counts {
			s.counts[i] = make([]uint8, len(o.counts[i]))
		}
	}
	if o.mask < s.mask {
		s.fold(o.mask + 1)
	}
	// Counter j of o's rows (and word k of its bits) lands on counter
	// j&s.mask (word k&(len−1)): the identity at equal widths, a fold
	// when o is wider.
	for i, row := range o.counts {
		mine := s.counts[i]
		for j, n := range row {
			if n == 0 {
				continue
			}
			c := &mine[uint64(j)&s.mask]
			*c = uint8(min(int(*c)+int(n), 255))
		}
	}
	words := uint64(len(s.benign) - 1)
	for k, w := range o.benign {
		s.benign[uint64(k)&words] |= w
	}
}

// fold narrows s to width counters a row (a power of two, no more than
// its own). An address's counter is its hash masked by the width, so
// counter i of the narrow row is the sum of counters i, i+width, … of the
// wide one, and its Bloom bit (the hash shifted, masked by 16×width)
// likewise the union of bits: the folded stats are exactly those recorded
// at the narrow width, and read each address at least as high as before.
func (s *AddrStats) fold(width uint64) {
	if width-1 >= s.mask {
		return
	}
	mask := width - 1
	for i, row := range s.counts {
		narrow := make([]uint8, width)
		for j, n := range row {
			c := &narrow[uint64(j)&mask]
			*c = uint8(min(int(*c)+int(n), 255))
		}
		s.counts[i] = narrow
	}
	benign := make([]uint64, 16*width/64)
	for k, w := range s.benign {
		benign[uint64(k)&uint64(len(benign)-1)] |= w
	}
	s.benign, s.mask, s.bmask = benign, mask, 16*width-1
}

// The binary form of AddrStats: the magic "fwas", the version, log2 of the
// width (0: stats that record nothing), then the Bloom filter's words
// little-endian and the count-min rows, one byte a counter: 6×width + 6
// bytes in all.
const (
	statsMagic   = "fwas"
	statsVersion = 1
	// maxStatsLog bounds the width a decoder accepts: 2^32 counters a
	// row, far past any run's, so a corrupt length cannot ask for more.
	maxStatsLog = 32
	// minStatsLog is the narrowest width NewAddrStats makes (1024
	// counters): a narrower one, whose Bloom filter would have no word,
	// comes from a damaged object.
	minStatsLog = 10
)

// ErrStatsFormat means bytes are not AddrStats in their binary form.
var ErrStatsFormat = errors.New("networks: not address stats")

// MarshalBinary returns the binary form of s (see UnmarshalBinary).
func (s *AddrStats) MarshalBinary() ([]byte, error) {
	head := append([]byte(statsMagic), statsVersion, 0)
	if s == nil || s.counts == nil {
		return head, nil
	}
	width := s.mask + 1
	head[5] = byte(bits.TrailingZeros64(width))
	out := make([]byte, 0, len(head)+len(s.benign)*8+statHashes*int(width))
	out = append(out, head...)
	for _, w := range s.benign {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	for _, row := range s.counts {
		out = append(out, row...)
	}
	return out, nil
}

// UnmarshalBinary sets s to the stats b holds in the binary form
// MarshalBinary gives.
func (s *AddrStats) UnmarshalBinary(b []byte) error {
	if len(b) < 6 || string(b[:4]) != statsMagic {
		return ErrStatsFormat
	}
	if b[4] != statsVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrStatsFormat, b[4], statsVersion)
	}
	lg := int(b[5])
	if lg == 0 {
		if len(b) != 6 {
			return fmt.Errorf("%w: %d bytes after empty stats", ErrStatsFormat, len(b)-6)
		}
		*s = AddrStats{}
		return nil
	}
	if lg < minStatsLog || lg > maxStatsLog {
		return fmt.Errorf("%w: width 2^%d", ErrStatsFormat, lg)
	}
	width := uint64(1) << lg
	words := 16 * width / 64
	if want := 6 + 8*words + statHashes*width; uint64(len(b)) != want {
		return fmt.Errorf("%w: %d bytes for width %d, want %d", ErrStatsFormat, len(b), width, want)
	}
	b = b[6:]
	out := AddrStats{mask: width - 1, bmask: 16*width - 1, benign: make([]uint64, words), counts: make([][]uint8, statHashes)}
	for k := range out.benign {
		out.benign[k] = binary.LittleEndian.Uint64(b[8*k:])
	}
	b = b[8*words:]
	for i := range out.counts {
		out.counts[i] = append([]uint8(nil), b[uint64(i)*width:uint64(i+1)*width]...)
	}
	*s = out
	return nil
}
