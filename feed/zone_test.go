package feed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testZone builds an RPZ zone like the rpz export: SOA, NS, and a
// "name CNAME ." and "*.name CNAME ." pair per listed name.
func testZone(t testing.TB, serial uint32, names ...string) []dns.RR {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN fluxwatch.rpz.\n$TTL 300\n@ IN SOA localhost. hostmaster.localhost. ( %d 3600 600 604800 300 )\n@ IN NS localhost.\n", serial)
	for _, n := range names {
		fmt.Fprintf(&b, "%s CNAME .\n*.%s CNAME .\n", n, n)
	}
	rrs, err := ParseZone(strings.NewReader(b.String()), "fluxwatch.rpz", "test")
	if err != nil {
		t.Fatal(err)
	}
	return rrs
}

// show renders records one a line without TTL noise, for comparisons.
func show(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			out = append(out, fmt.Sprintf("SOA %d", soa.Serial))
			continue
		}
		f := strings.Fields(rr.String())
		out = append(out, strings.TrimSuffix(f[0], ".fluxwatch.rpz.")+" "+f[3]+" "+f[4])
	}
	return out
}

func TestIXFRSequences(t *testing.T) {
	const zone = "fluxwatch.rpz."
	v1, err := newVersion(zone, testZone(t, 10, "a.test", "b.test"), nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := newVersion(zone, testZone(t, 11, "b.test", "c.test"), v1, 2)
	if err != nil {
		t.Fatal(err)
	}
	v3, err := newVersion(zone, testZone(t, 12, "c.test", "d.test"), v2, 2)
	if err != nil {
		t.Fatal(err)
	}
	v4, err := newVersion(zone, testZone(t, 13, "c.test", "d.test", "e.test"), v3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		v           *version
		from        uint32
		incremental bool
		want        []string
	}{
		{"one step", v2, 10, true, []string{"SOA 11", "SOA 10", "*.a.test CNAME .", "a.test CNAME .",
			"SOA 11", "*.c.test CNAME .", "c.test CNAME .", "SOA 11"}},
		{"two steps", v3, 10, true, []string{"SOA 12",
			"SOA 10", "*.a.test CNAME .", "a.test CNAME .", "SOA 11", "*.c.test CNAME .", "c.test CNAME .",
			"SOA 11", "*.b.test CNAME .", "b.test CNAME .", "SOA 12", "*.d.test CNAME .", "d.test CNAME .",
			"SOA 12"}},
		{"up to date", v3, 12, false, []string{"SOA 12"}},
		{"client claims a later serial", v3, 99, false, []string{"SOA 12"}},
		// v4 keeps two diffs (11→12, 12→13): 10 is too old and gets the whole zone.
		{"too old", v4, 10, false, []string{"SOA 13", "*.c.test CNAME .", "*.d.test CNAME .", "*.e.test CNAME .",
			"c.test CNAME .", "d.test CNAME .", "e.test CNAME .", "@ NS localhost.", "SOA 13"}},
		{"unknown serial", v4, 5, false, []string{"SOA 13", "*.c.test CNAME .", "*.d.test CNAME .", "*.e.test CNAME .",
			"c.test CNAME .", "d.test CNAME .", "e.test CNAME .", "@ NS localhost.", "SOA 13"}},
		{"oldest kept", v4, 11, true, []string{"SOA 13",
			"SOA 11", "*.b.test CNAME .", "b.test CNAME .", "SOA 12", "*.d.test CNAME .", "d.test CNAME .",
			"SOA 12", "SOA 13", "*.e.test CNAME .", "e.test CNAME .", "SOA 13"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rrs, inc := tc.v.ixfr(tc.from)
			got := show(rrs)
			// The apex NS shows as the zone name; normalise for the table.
			for i, g := range got {
				got[i] = strings.Replace(g, "fluxwatch.rpz. NS", "@ NS", 1)
			}
			if inc != tc.incremental || !slices.Equal(got, tc.want) {
				t.Errorf("ixfr(%d) = incremental %v\n%s\nwant incremental %v\n%s", tc.from, inc,
					strings.Join(got, "\n"), tc.incremental, strings.Join(tc.want, "\n"))
			}
		})
	}
	if len(v4.diffs) != 2 {
		t.Errorf("v4 keeps %d diffs, want 2", len(v4.diffs))
	}
	if len(v1.diffs) != 0 || len(v2.diffs) != 1 || len(v3.diffs) != 2 {
		t.Errorf("an older version's diffs changed: %d %d %d", len(v1.diffs), len(v2.diffs), len(v3.diffs))
	}
}

func TestNewVersionRejects(t *testing.T) {
	const zone = "fluxwatch.rpz."
	v1, err := newVersion(zone, testZone(t, 100, "a.test"), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	noSOA := testZone(t, 1, "a.test")[1:]
	twoSOA := append(testZone(t, 101, "a.test"), testZone(t, 102)[0])
	outside, _ := dns.NewRR("evil.example. 300 IN A 192.0.2.1")
	chaos, _ := dns.NewRR("x.fluxwatch.rpz. 300 CH TXT \"x\"")
	for _, tc := range []struct {
		name string
		rrs  []dns.RR
		want error
	}{
		{"no SOA", noSOA, ErrNoSOA},
		{"two SOA", twoSOA, ErrNoSOA},
		{"outside the zone", append(testZone(t, 101), outside), ErrOutOfZone},
		{"class CH", append(testZone(t, 101), chaos), nil},
		{"serial goes back", testZone(t, 99, "a.test"), ErrSerial},
		{"serial too far ahead wraps back", testZone(t, 100+1<<31, "a.test"), ErrSerial},
		{"same serial, other content", testZone(t, 100, "b.test"), ErrSerial},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newVersion(zone, tc.rrs, v1, 4)
			if err == nil || v != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("newVersion = %v, %v; want error %v", v, err, tc.want)
			}
		})
	}
	// The same zone again is no new version and no error.
	if v, err := newVersion(zone, testZone(t, 100, "a.test"), v1, 4); v != nil || err != nil {
		t.Fatalf("republishing the served version: %v, %v", v, err)
	}
	// Serial arithmetic wraps: 2^32-1 is followed by 0..2^31-2.
	last, err := newVersion(zone, testZone(t, 1<<32-1, "a.test"), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newVersion(zone, testZone(t, 5, "a.test"), last, 4); err != nil {
		t.Fatalf("serial wrapping past 2^32-1: %v", err)
	}
}

func TestSerialAfter(t *testing.T) {
	for _, tc := range []struct {
		a, b uint32
		want bool
	}{
		{2, 1, true}, {1, 2, false}, {1, 1, false}, {0, 1<<32 - 1, true}, {1<<31 - 1, 0, true},
		{1 << 31, 0, false}, {2026030112, 2026030111, true},
	} {
		if got := serialAfter(tc.a, tc.b); got != tc.want {
			t.Errorf("serialAfter(%d, %d) = %v", tc.a, tc.b, got)
		}
	}
}

func TestParseZoneRefusesInclude(t *testing.T) {
	_, err := ParseZone(strings.NewReader("$INCLUDE /etc/passwd\n"), "fluxwatch.rpz", "x.rpz")
	if err == nil {
		t.Fatal("$INCLUDE accepted")
	}
}

// ReadZoneSerial finds the apex SOA's serial, and says why when there is none.
func TestReadZoneSerial(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, zone string
		want       uint32
		err        string
	}{
		{"ok.rpz", "$ORIGIN fluxwatch.rpz.\n$TTL 300\n@ IN SOA localhost. hostmaster.localhost. ( 2026120601 3600 600 604800 300 )\n@ IN NS localhost.\nx.test CNAME .\n", 2026120601, ""},
		{"nosoa.rpz", "$ORIGIN fluxwatch.rpz.\n@ 300 IN NS localhost.\n", 0, "exactly one SOA"},
		{"other.rpz", "$ORIGIN other.rpz.\n@ 300 IN SOA localhost. hostmaster.localhost. 7 3600 600 604800 300\n", 0, "exactly one SOA"},
		{"bad.rpz", "$ORIGIN fluxwatch.rpz.\nx 300 IN A not-an-address\n", 0, "parsing zone"},
	} {
		path := filepath.Join(dir, c.name)
		os.WriteFile(path, []byte(c.zone), 0o644)
		got, err := ReadZoneSerial(path, "fluxwatch.rpz")
		if got != c.want || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %d, %v; want %d, error with %q", c.name, got, err, c.want, c.err)
		}
	}
	if _, err := ReadZoneSerial(filepath.Join(dir, "missing.rpz"), "fluxwatch.rpz"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v; want fs.ErrNotExist", err)
	}
}
