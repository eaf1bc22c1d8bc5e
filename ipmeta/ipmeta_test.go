package ipmeta

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

type want struct {
	addr    string
	asn     uint32
	org     string
	country string
	ok      bool
}

func check(t *testing.T, db *DB, cases []want) {
	t.Helper()
	for _, c := range cases {
		info, ok := db.Lookup(netip.MustParseAddr(c.addr))
		if ok != c.ok || info.ASN != c.asn || info.Country != c.country || (c.org != "" && info.Org != c.org) {
			t.Errorf("Lookup(%s) = %+v, %v; want ASN %d org %q country %q, %v", c.addr, info, ok, c.asn, c.org, c.country, c.ok)
		}
	}
}

func open(t *testing.T, kind Kind, paths ...string) *DB {
	t.Helper()
	db := &DB{}
	for _, p := range paths {
		if err := db.Open(p, kind); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestIPtoASN(t *testing.T) {
	for _, file := range []string{"testdata/ip2asn-combined.tsv", "testdata/ip2asn-v4.tsv.gz"} {
		db := open(t, ASN, file)
		check(t, db, []want{
			{"1.0.0.1", 13335, "CLOUDFLARENET", "US", true},
			{"1.0.0.255", 13335, "", "US", true},
			{"1.0.2.1", 0, "", "", false}, // "Not routed" (AS 0)
			{"1.0.5.5", 38803, "GTELECOM-AUSTRALIA Gtelecom Pty Ltd", "AU", true},
			{"8.8.8.8", 15169, "GOOGLE", "US", true},
			{"8.8.9.1", 0, "", "", false},
			{"2001:4860:4860::8888", 15169, "GOOGLE", "US", true},
			{"::ffff:8.8.8.8", 15169, "GOOGLE", "US", true},
		})
	}
}

func TestIPLocationDB(t *testing.T) {
	db := open(t, ASN, "testdata/asn-ipv4.csv", "testdata/asn-ipv6.csv")
	if err := db.Open("testdata/asn-country-ipv4.csv", Country); err != nil {
		t.Fatal(err)
	}
	db.Open("testdata/asn-country-ipv6.csv", Country)
	check(t, db, []want{
		{"1.0.0.7", 13335, "Cloudflare, Inc.", "AU", true}, // quoted organisation with a comma
		{"1.0.64.1", 18144, "Enecom,Inc.", "", true},
		{"1.0.2.2", 0, "", "CN", true}, // a country without an ASN
		{"2001:4860:4801::1", 15169, "Google LLC", "", true},
		{"2001:200:1ba::1", 24047, "Internet Systems Consortium, Inc.", "JP", true},
		{"9.9.9.9", 0, "", "", false},
	})
}

func TestNestedCountryRangesInnermostWins(t *testing.T) {
	db := open(t, Country, "testdata/nested-country.csv")
	check(t, db, []want{
		{"10.0.0.1", 0, "", "US", true},
		{"10.1.0.1", 0, "", "DE", true},
		{"10.1.2.3", 0, "", "FR", true},
		{"10.1.3.0", 0, "", "DE", true}, // after the inner range, the middle one again
		{"10.1.255.255", 0, "", "DE", true},
		{"10.2.0.9", 0, "", "JP", true},
		{"10.2.1.0", 0, "", "US", true},
		{"10.255.255.255", 0, "", "US", true},
		{"11.0.0.0", 0, "", "", false},
	})
}

func TestEarlierSourceWins(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.tsv")
	b := filepath.Join(dir, "b.tsv")
	os.WriteFile(a, []byte("1.0.0.0\t1.0.0.255\t111\tUS\tFIRST\n"), 0o644)
	os.WriteFile(b, []byte("1.0.0.0\t1.0.255.255\t222\tDE\tSECOND\n"), 0o644)
	check(t, open(t, ASN, a, b), []want{{"1.0.0.1", 111, "FIRST", "US", true}, {"1.0.1.1", 222, "SECOND", "DE", true}})
}

func TestMMDB(t *testing.T) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	_, n1, _ := net.ParseCIDR("1.0.0.0/24")
	_, n2, _ := net.ParseCIDR("2001:4860::/32")
	tree.Insert(n1, mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(13335), "autonomous_system_organization": mmdbtype.String("CLOUDFLARENET")})
	tree.Insert(n2, mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(15169), "autonomous_system_organization": mmdbtype.String("GOOGLE"),
		"country": mmdbtype.Map{"iso_code": mmdbtype.String("US")}})
	path := filepath.Join(t.TempDir(), "asn.mmdb")
	f, _ := os.Create(path)
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	db := open(t, ASN, path)
	check(t, db, []want{
		{"1.0.0.9", 13335, "CLOUDFLARENET", "", true},
		{"2001:4860::1", 15169, "GOOGLE", "US", true},
		{"8.8.8.8", 0, "", "", false},
	})
	if err := (&DB{}).Open(filepath.Join(t.TempDir(), "missing.mmdb"), ASN); err == nil {
		t.Error("opening a missing mmdb did not fail")
	}
}

func TestMalformedLines(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1.0.0.0\t1.0.0.255\n", "t:1: want 5 tab-separated fields"},
		{"# c\n1.0.0.x\t1.0.0.255\t1\tUS\tX\n", "t:2: bad address range"},
		{"1.0.0.9\t1.0.0.1\t1\tUS\tX\n", "t:1: range end"},
		{"1.0.0.0\t1.0.0.255\tASx\tUS\tX\n", `t:1: bad AS number "ASx"`},
		{"1.0.0.0,1.0.0.255,13335,\"Cloudflare\n", "t:1: bad CSV"},
		{"1.0.0.0,1.0.0.255\n", "t:1: want 3 (start,end,country) or 4"},
		{"1.0.0.0,1.0.0.255,USA1\n", `t:1: bad country code "USA1"`},
		{"1.0.0.0,::1,US\n", "t:1: range end"},
	} {
		_, err := Load(strings.NewReader(c.in), "t")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%q) = %v; want %q", c.in, err, c.want)
		}
	}
}

func TestNestedIPv6AndMixedOrder(t *testing.T) {
	// IPv6 before IPv4, and a more specific announcement inside a larger one.
	in := "2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,64500,Big\n" +
		"2001:db8:1::,2001:db8:1:ffff:ffff:ffff:ffff:ffff,64501,Small\n" +
		"192.0.2.0,192.0.2.255,64502,V4\n"
	tab, err := Load(strings.NewReader(in), "t.csv")
	if err != nil {
		t.Fatal(err)
	}
	db := &DB{}
	db.AddASN(tab)
	check(t, db, []want{
		{"2001:db8::1", 64500, "Big", "", true},
		{"2001:db8:1::1", 64501, "Small", "", true},
		{"2001:db8:2::1", 64500, "Big", "", true},
		{"192.0.2.1", 64502, "V4", "", true},
	})
}
