package networks

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// statDomain is one domain not judged flux, as AddrStats records it.
type statDomain struct {
	addrs  []netip.Addr
	benign bool
}

// statDomains returns n random domains over a few thousand addresses, and
// one address that hundreds of them resolved to (the counters saturate).
func statDomains(r *rand.Rand, n int) []statDomain {
	busy := netip.MustParseAddr("192.0.2.1")
	out := make([]statDomain, n)
	for i := range out {
		var addrs []netip.Addr
		for range 1 + r.IntN(3) {
			addrs = append(addrs, netip.AddrFrom4([4]byte{10, byte(r.IntN(16)), byte(r.IntN(256)), 1}))
		}
		if i%5 == 0 {
			addrs = append(addrs, busy)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		out[i] = statDomain{addrs: slices.Compact(addrs), benign: r.IntN(3) == 0}
	}
	return out
}

func record(s *AddrStats, ds []statDomain) *AddrStats {
	for _, d := range ds {
		s.Add(d.addrs, d.benign)
	}
	return s
}

// The shards of a cluster count their own domains apart; merged, their
// stats of one width are exactly what one machine counts over all of
// them, saturated counters included; merged into stats sized for fewer
// domains, they are exactly those stats too.
func TestShardStatsMergeEqualsOneMachine(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	domains := statDomains(r, 3000)
	const n = 6000
	whole := record(NewAddrStats(n), domains)
	if whole.NonFlux(netip.MustParseAddr("192.0.2.1")) != 255 {
		t.Fatal("the busy address does not saturate its counters: the test would not check saturation")
	}
	parts := make([][]statDomain, 3)
	for _, d := range domains {
		k := r.IntN(len(parts))
		parts[k] = append(parts[k], d)
	}
	merged := &AddrStats{} // the zero value takes the first part's width
	for _, p := range parts {
		merged.Merge(record(NewAddrStats(n), p))
	}
	if !reflect.DeepEqual(merged, whole) {
		t.Error("the merge of the parts' stats differs from the stats of the whole")
	}
	// Wider parts (a shard that sized its stats with room to spare) fold
	// to the receiver's width: again exactly the whole's at that width.
	narrow := NewAddrStats(n)
	for i, p := range parts {
		narrow.Merge(record(NewAddrStats(n<<i), p))
	}
	if !reflect.DeepEqual(narrow, whole) {
		t.Error("parts of wider stats merged into narrower ones differ from the whole counted at that width")
	}
	// A wider receiver folds itself to the narrower part's width.
	wide := record(NewAddrStats(4*n), parts[0])
	wide.Merge(record(NewAddrStats(n), parts[1]))
	wide.Merge(record(NewAddrStats(2*n), parts[2]))
	if !reflect.DeepEqual(wide, whole) {
		t.Error("a wide receiver merged with narrower parts differs from the whole counted at the narrowest width")
	}
	// Merging nothing changes nothing (compared in the binary form: a
	// copy of the struct would share the counters).
	before, _ := whole.MarshalBinary()
	whole.Merge(nil)
	whole.Merge(&AddrStats{})
	if after, _ := whole.MarshalBinary(); !bytes.Equal(before, after) {
		t.Error("merging empty stats changed them")
	}
}

// Folded stats never understate: each address reads as benign if a benign
// domain resolved to it, and counts at least as many domains as did, and
// at least as many as the wide stats said.
func TestShardStatsFoldNeverUnderstates(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	domains := statDomains(r, 20000) // ten times what the folded stats are sized for
	truth, benign := map[netip.Addr]int{}, map[netip.Addr]bool{}
	for _, d := range domains {
		for _, a := range d.addrs {
			truth[a]++
			benign[a] = benign[a] || d.benign
		}
	}
	wide := record(NewAddrStats(len(truth)), domains)
	folded := &AddrStats{}
	folded.Merge(wide)
	folded.fold(1024)
	if folded.mask != 1023 {
		t.Fatalf("folded to %d counters a row, want 1024", folded.mask+1)
	}
	over := 0
	for a, n := range truth {
		got := folded.NonFlux(a)
		if got < min(n, 255) || got < wide.NonFlux(a) {
			t.Fatalf("%s: folded count %d, true %d, wide %d", a, got, n, wide.NonFlux(a))
		}
		if got > min(n, 255) {
			over++
		}
		if benign[a] && !folded.Benign(a) {
			t.Fatalf("%s: benign lost in the fold", a)
		}
	}
	if over == 0 {
		t.Error("no count overstated at a tenth of the width: the fold was not checked against anything")
	}
}

// The binary form gives back the same stats, and what is not that form
// is refused.
func TestShardStatsBinaryForm(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	s := record(NewAddrStats(3000), statDomains(r, 1000))
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := 6*4096 + 6; len(b) != want {
		t.Errorf("%d bytes for 4096 counters a row, want %d", len(b), want)
	}
	var got AddrStats
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, s) {
		t.Error("decoded stats differ")
	}
	var none *AddrStats
	empty, _ := none.MarshalBinary()
	got = *s
	if err := got.UnmarshalBinary(empty); err != nil || !reflect.DeepEqual(got, AddrStats{}) {
		t.Errorf("empty stats decoded to %v, %v", got.mask, err)
	}
	bad := map[string][]byte{
		"truncated":     b[:len(b)-1],
		"too long":      append(slices.Clone(b), 0),
		"magic":         append([]byte("fwax"), b[4:]...),
		"version":       append(append([]byte("fwas"), 2), b[5:]...),
		"huge width":    append([]byte("fwas\x01"), 60),
		"tiny width":    append([]byte("fwas\x01\x01"), make([]byte, 8)...),
		"short":         []byte("fw"),
		"empty trailer": append(slices.Clone(empty), 1),
	}
	for name, in := range bad {
		if err := got.UnmarshalBinary(in); !errors.Is(err, ErrStatsFormat) {
			t.Errorf("%s: %v, want ErrStatsFormat", name, err)
		}
	}
}

// The members of a cluster's shards arrive in any order; the grouping is
// one machine's whatever the order, ties included: here a member that
// bridges two pairs links to each by one member, its latest answers in
// neither, so the tie between the pairs is broken by name, not position.
func TestShardMemberOrderDoesNotMatter(t *testing.T) {
	x, y := agentPool(1, 200), agentPool(2, 200)
	members := []Member{
		{Domain: "a-bridge.test", Agents: slices.Concat(x[:5], y[:5])},
		{Domain: "p1.test", Agents: x[:100]}, {Domain: "p2.test", Agents: x[50:150]},
		{Domain: "q1.test", Agents: y[:100]}, {Domain: "q2.test", Agents: y[50:150]},
	}
	want := "a-bridge.test p1.test p2.test | q1.test q2.test"
	if got := domainsOf(members, Group(members, nil, DefaultRules)); got != want {
		t.Fatalf("name order: %s, want %s", got, want)
	}
	r := rand.New(rand.NewPCG(17, 18))
	for range 20 {
		shuffled := slices.Clone(members)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := domainsOf(shuffled, Group(shuffled, nil, DefaultRules)); got != want {
			var order []string
			for _, m := range shuffled {
				order = append(order, m.Domain)
			}
			t.Fatalf("in the order %s: %s, want %s", strings.Join(order, " "), got, want)
		}
	}
}
