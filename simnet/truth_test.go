package simnet_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/simnet"
)

type asnRange struct {
	start, end netip.Addr
	asn        uint32
}

type asnTable []asnRange

func (tb asnTable) lookup(a netip.Addr) uint32 {
	for _, r := range tb {
		if r.start.Compare(a) <= 0 && a.Compare(r.end) <= 0 {
			return r.asn
		}
	}
	return 0
}

// readASNTable parses the world's table, checking its format.
func readASNTable(t *testing.T, w *simnet.World) asnTable {
	t.Helper()
	var buf bytes.Buffer
	if err := w.WriteASNTable(&buf); err != nil {
		t.Fatal(err)
	}
	var tb asnTable
	sc := bufio.NewScanner(&buf)
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 {
			t.Fatalf("line %d: %d fields, want 5: %q", n, len(f), sc.Text())
		}
		start, err1 := netip.ParseAddr(f[0])
		end, err2 := netip.ParseAddr(f[1])
		asn, err3 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("line %d: %q: %v %v %v", n, sc.Text(), err1, err2, err3)
		}
		if start.Is4() != end.Is4() || end.Less(start) {
			t.Errorf("line %d: range %v-%v", n, start, end)
		}
		if len(f[3]) != 2 || strings.ToUpper(f[3]) != f[3] || f[4] == "" {
			t.Errorf("line %d: country %q, description %q", n, f[3], f[4])
		}
		if len(tb) > 0 && !tb[len(tb)-1].end.Less(start) {
			t.Errorf("line %d: %v not after the previous range's end %v", n, start, tb[len(tb)-1].end)
		}
		for _, p := range special {
			if p.Contains(start) || p.Contains(end) {
				t.Errorf("line %d: range %v-%v in special-purpose %v", n, start, end, p)
			}
		}
		tb = append(tb, asnRange{start, end, uint32(asn)})
	}
	if len(tb) < 60 {
		t.Errorf("table has %d ranges, want at least one per AS", len(tb))
	}
	return tb
}

var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("224.0.0.0/3"),
	netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("fc00::/7"),
}

func TestASNTableParses(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 9, Vantages: 1})
	tb := readASNTable(t, w)
	for _, r := range tb {
		for _, a := range []netip.Addr{r.start, r.end} {
			if asn, ok := w.ASNOf(a); !ok || asn != r.asn {
				t.Errorf("ASNOf(%v) = %d, %v; the table says %d", a, asn, ok, r.asn)
			}
		}
	}
	if _, ok := w.ASNOf(netip.MustParseAddr("127.0.0.1")); ok {
		t.Errorf("loopback has an ASN")
	}
}

func TestSameSeedSameWorld(t *testing.T) {
	t.Parallel()
	dump := func(seed int64) (domains []simnet.Domain, table, seeds string) {
		w := start(t, simnet.Config{Seed: seed, Vantages: 1})
		var tb, sb bytes.Buffer
		if err := w.WriteASNTable(&tb); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteSeeds(&sb); err != nil {
			t.Fatal(err)
		}
		return w.Domains(), tb.String(), sb.String()
	}
	d1, t1, s1 := dump(42)
	d2, t2, s2 := dump(42)
	d3, t3, _ := dump(43)
	if !slices.Equal(d1, d2) || t1 != t2 || s1 != s2 {
		t.Errorf("two worlds with seed 42 differ")
	}
	if slices.Equal(d1, d3) || t1 == t3 {
		t.Errorf("worlds with seeds 42 and 43 are the same")
	}
}

func TestDomainsAndTruth(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 10, Vantages: 2, Benign: 6, Broken: -1}.WithNetworks())
	classes := make(map[string]int)
	names := make(map[string]bool)
	networks := map[string][]simnet.Domain{}
	ds := w.Domains()
	for _, d := range ds {
		if d.Kind == simnet.KindNetworkFlux {
			networks[d.Network] = append(networks[d.Network], d)
		} else {
			classes[d.Class]++
		}
		if (d.Network != "") != (d.Kind == simnet.KindNetworkFlux) {
			t.Errorf("%+v: network %q", d, d.Network)
		}
		if names[d.Name] || d.Name != strings.ToLower(d.Name) || strings.HasSuffix(d.Name, ".") {
			t.Errorf("bad or repeated name %q", d.Name)
		}
		if !strings.HasSuffix(d.Name, ".test") && !strings.HasSuffix(d.Name, ".example") {
			t.Errorf("%s is not under a reserved TLD", d.Name)
		}
		names[d.Name] = true
		if got, ok := w.Truth(strings.ToUpper(d.Name) + "."); !ok || got != d {
			t.Errorf("Truth(%s) = %+v, %v; want %+v", d.Name, got, ok, d)
		}
		if !kindInRange(d) {
			t.Errorf("%s %+v out of its kind's ranges", d.Kind, d)
		}
		if d.Allowlisted != (d.Kind == simnet.KindPool) {
			t.Errorf("%+v: allowlisted %v", d, d.Allowlisted)
		}
	}
	// 6 flux-a + 2 slow + 2 narrow; 6 benign + 2 geo + 1 pool + 2 migrations
	// + 2 big CDNs + 3 on one shared host + 2 load balancers + 6 on one
	// CDN edge + 6 parked; and the networks' domains.
	if want := map[string]int{"single-flux": 10, "double-flux": 4, "benign": 30}; fmt.Sprint(classes) != fmt.Sprint(want) {
		t.Errorf("classes %v, want %v", classes, want)
	}
	// Three networks of 4–5 domains: three from the start (one of each
	// but the first moved in from the one before, 8–14 minutes in), the
	// rest starting 4–14 minutes in; the third is double flux.
	if len(networks) != simnet.EvalNetworks {
		t.Errorf("%d networks, want %d", len(networks), simnet.EvalNetworks)
	}
	for i := range simnet.EvalNetworks {
		name := fmt.Sprintf("botnet-%d", i+1)
		var movers, late int
		for _, d := range networks[name] {
			switch {
			case d.PreviousNetwork != "":
				movers++
				if d.PreviousNetwork != fmt.Sprintf("botnet-%d", i) || d.MovesAt.Before(simnet.DefaultStart.Add(8*time.Minute)) || d.MovesAt.After(simnet.DefaultStart.Add(14*time.Minute)) {
					t.Errorf("%s: mover %+v", name, d)
				}
			case !d.Starts.IsZero():
				late++
				if d.Starts.Before(simnet.DefaultStart.Add(4*time.Minute)) || d.Starts.After(simnet.DefaultStart.Add(14*time.Minute)) {
					t.Errorf("%s: newer domain %+v", name, d)
				}
			}
			if want := simnet.ClassSingleFlux; i == 2 && d.PreviousNetwork == "" {
				if d.Class != simnet.ClassDoubleFlux {
					t.Errorf("%s: %+v not double flux", name, d)
				}
			} else if d.Class != want {
				t.Errorf("%s: %+v not single flux", name, d)
			}
		}
		if n := len(networks[name]); n < 4 || n > 5 || late < 1 || late > 2 || movers != min(i, 1) {
			t.Errorf("%s: %d domains, %d newer, %d moved in", name, n, late, movers)
		}
	}
	if !slices.IsSortedFunc(ds, func(a, b simnet.Domain) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("Domains not sorted by name")
	}
	if _, ok := w.Truth("ns1.unknown.test"); ok {
		t.Errorf("Truth knows a name outside the world")
	}

	var seeds, resolvers bytes.Buffer
	if err := w.WriteSeeds(&seeds); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteResolvers(&resolvers); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(seeds.String(), "\n"), "\n")
	if lines[0] != "# fluxwatch simulated world, seed 10" || len(lines) != len(ds)+1 || lines[1] != ds[0].Name {
		t.Errorf("seeds file:\n%s", seeds.String())
	}
	if got := strings.Fields(resolvers.String()); !slices.Equal(got, w.Vantages()) || len(got) != 2 {
		t.Errorf("resolvers %v, vantages %v", got, w.Vantages())
	}
	for _, v := range w.Vantages() {
		if ap, err := netip.ParseAddrPort(v); err != nil || !ap.Addr().IsLoopback() {
			t.Errorf("vantage %q is not a loopback address and port", v)
		}
	}
}

// kindInRange reports whether a domain's truth fits what its kind promises.
func kindInRange(d simnet.Domain) bool {
	switch d.Kind {
	case simnet.KindFluxA:
		return d.Class == simnet.ClassSingleFlux && d.Addresses >= 200 && d.ASNs >= 20 && d.TTL >= 30 && d.TTL <= 180
	case simnet.KindFluxNSAddr, simnet.KindFluxNSName:
		return d.Class == simnet.ClassDoubleFlux && d.Addresses >= 300 && d.ASNs >= 20 && d.TTL >= 30 && d.TTL <= 180
	case simnet.KindSlowFlux:
		return d.Class == simnet.ClassSingleFlux && d.Addresses >= 200 && d.ASNs >= 20 && d.TTL >= 60 && d.TTL <= 120
	case simnet.KindNarrowFlux:
		return d.Class == simnet.ClassSingleFlux && d.Addresses >= 150 && d.Addresses <= 300 && d.ASNs == 3 && d.TTL >= 30 && d.TTL <= 120
	case simnet.KindCDN:
		return d.Class == simnet.ClassBenign && d.Addresses >= 200+200/3 && d.ASNs <= 2 && d.TTL == 20
	case simnet.KindGeo:
		return d.Class == simnet.ClassBenign && d.Addresses >= 6 && d.Addresses <= 12 && d.ASNs <= 2 && d.TTL == 60
	case simnet.KindPool:
		return d.Class == simnet.ClassBenign && d.Addresses >= 250 && d.ASNs >= 30 && d.TTL == 150
	case simnet.KindMigration:
		return d.Class == simnet.ClassBenign && d.Addresses == 4 && d.ASNs == 2 && d.TTL == 300
	case simnet.KindBigCDN:
		return d.Class == simnet.ClassBenign && d.Addresses >= 300 && d.Addresses <= 600 && d.ASNs <= 2 && d.TTL >= 20 && d.TTL <= 60
	case simnet.KindSharedHosting:
		return d.Class == simnet.ClassBenign && d.Addresses <= 2 && d.ASNs == 1 && d.TTL == 3600
	case simnet.KindLoadBalancer:
		return d.Class == simnet.ClassBenign && d.Addresses >= 8 && d.Addresses <= 16 && d.ASNs == 1 && d.TTL == 30
	case simnet.KindNetworkFlux:
		return (d.Class == simnet.ClassSingleFlux || d.Class == simnet.ClassDoubleFlux) && d.Addresses >= 120 && d.ASNs >= 20 && d.TTL >= 60 && d.TTL <= 180
	case simnet.KindSharedEdge:
		return d.Class == simnet.ClassBenign && d.Addresses == 4 && d.ASNs == 1 && d.TTL == 60
	case simnet.KindParked:
		return d.Class == simnet.ClassBenign && d.Addresses == 1 && d.ASNs == 1 && d.TTL == 3600
	case simnet.KindRoundRobin, simnet.KindStable:
		return d.Class == simnet.ClassBenign && d.ASNs == 1
	}
	return d.Class == simnet.ClassBroken
}

func ExampleStart() {
	w, err := simnet.Start(context.Background(), simnet.Config{Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	classes := make(map[string]int)
	for _, d := range w.Domains() {
		classes[d.Class]++
	}
	fmt.Println(len(w.Vantages()), "vantages")
	fmt.Println(classes)
	fmt.Println(w.Now().Before(simnet.DefaultStart.Add(time.Hour)))
	// Output:
	// 4 vantages
	// map[benign:20 broken:3 double-flux:4 single-flux:10]
	// true
}
