package ipmeta

import (
	"net/netip"
	"strings"
	"testing"
)

// Rows in the format iptoasn publishes.
const sample = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n" +
	"1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n" +
	"8.8.8.0\t8.8.8.255\t15169\tUS\tGOOGLE\n" +
	"2001:4860::\t2001:4860:ffff:ffff:ffff:ffff:ffff:ffff\t15169\tUS\tGOOGLE\n"

func TestLookup(t *testing.T) {
	tab, err := Load(strings.NewReader(sample), "sample.tsv")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		asn  uint32
		ok   bool
	}{
		{"1.0.0.1", 13335, true}, {"1.0.0.255", 13335, true}, {"1.0.2.1", 0, false},
		{"8.8.8.8", 15169, true}, {"8.8.9.1", 0, false}, {"0.0.0.1", 0, false},
		{"2001:4860:4860::8888", 15169, true}, {"::ffff:8.8.8.8", 15169, true},
	} {
		info, ok := tab.Lookup(netip.MustParseAddr(c.addr))
		if ok != c.ok || info.ASN != c.asn {
			t.Errorf("Lookup(%s) = %d, %v; want %d, %v", c.addr, info.ASN, ok, c.asn, c.ok)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1.0.0.0\t1.0.0.255\n", "t.tsv:1: want 5 tab-separated fields"},
		{"# c\n1.0.0.x\t1.0.0.255\t1\tUS\tX\n", "t.tsv:2: bad address range"},
		{"1.0.0.9\t1.0.0.1\t1\tUS\tX\n", "t.tsv:1: range end"},
		{"1.0.0.0\t1.0.0.255\tASx\tUS\tX\n", `t.tsv:1: bad AS number "ASx"`},
		{"1.0.0.0\t1.0.0.255\t1\tUS\tX\n1.0.0.128\t1.0.1.0\t2\tUS\tY\n", "overlap"},
	} {
		_, err := Load(strings.NewReader(c.in), "t.tsv")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%q) = %v; want %q", c.in, err, c.want)
		}
	}
}
