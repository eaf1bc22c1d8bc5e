package ipmeta

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"testing"
)

// synthetic writes n disjoint ip-location-db ASN rows (IPv4 /24s), about
// the size of the real table when n is 515k.
func synthetic(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		a := uint32(0x01000000) + uint32(i)<<8
		fmt.Fprintf(&b, "%d.%d.%d.0,%d.%d.%d.255,%d,\"Org %d, Inc.\"\n", a>>24, a>>16&255, a>>8&255, a>>24, a>>16&255, a>>8&255, 1000+i%60000, i%60000)
	}
	return b.Bytes()
}

// BenchmarkLoadFullTable loads a table the size of ip-location-db's ASN
// table (515k ranges). Set FLUXWATCH_ASN_CSV to a real file (scripts/fetch-ipdb.sh)
// to load that instead. The resident memory of a whole process with the
// real table loaded is in the README (about 70 MB).
func BenchmarkLoadFullTable(b *testing.B) {
	data := synthetic(515_000)
	if path := os.Getenv("FLUXWATCH_ASN_CSV"); path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(bytes.NewReader(data), "bench.csv"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	t, err := Load(bytes.NewReader(synthetic(515_000)), "bench.csv")
	if err != nil {
		b.Fatal(err)
	}
	db := &DB{}
	db.AddASN(t)
	addrs := []netip.Addr{netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("5.6.7.8"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2001:db8::1")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		db.Lookup(addrs[i%len(addrs)])
		i++
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tab, _ := Load(bytes.NewReader(synthetic(1000)), "x.csv")
	db := &DB{}
	db.AddASN(tab)
	a := netip.MustParseAddr("1.0.5.9")
	if n := testing.AllocsPerRun(100, func() { db.Lookup(a) }); n != 0 {
		t.Fatalf("Lookup allocates %v times", n)
	}
}
