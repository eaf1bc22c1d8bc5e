package simnet_test

import (
	"bytes"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/simnet"
)

// faster makes the hard cases' longest TTL (300 s) pass in 0.1 s.
const faster = 3000

// ofKind returns the world's domains of kind, failing when there are none.
func ofKind(t *testing.T, w *simnet.World, kind string) []simnet.Domain {
	t.Helper()
	var out []simnet.Domain
	for _, d := range w.Domains() {
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s domain in the world", kind)
	}
	return out
}

// asnsOf returns the distinct ASNs of addresses.
func asnsOf(t *testing.T, w *simnet.World, as []netip.Addr) map[uint32]bool {
	t.Helper()
	out := make(map[uint32]bool)
	for _, a := range as {
		asn, ok := w.ASNOf(a)
		if !ok {
			t.Fatalf("%v has no ASN", a)
		}
		out[asn] = true
	}
	return out
}

func TestGeoAnswersByRegion(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 30, Vantages: 6, Speed: faster})
	for _, d := range ofKind(t, w, simnet.KindGeo) {
		byVantage := make([][]netip.Addr, len(w.Vantages()))
		all := make(map[netip.Addr]bool)
		for round := range 3 {
			for i, v := range w.Vantages() {
				resp := query(t, v, "udp", d.Name, dns.TypeA)
				got := addrs(resp)
				if len(got) < 2 || len(got) > 4 || len(got) != len(resp.Answer) || ttlOf(t, resp) > 60 {
					t.Fatalf("%s via vantage %d: want 2..4 A records (no CNAME), TTL ≤ 60:\n%v", d.Name, i, resp)
				}
				if round > 0 && !slices.Equal(got, byVantage[i]) {
					t.Errorf("%s via vantage %d changed from %v to %v", d.Name, i, byVantage[i], got)
				}
				byVantage[i] = got
				for _, a := range got {
					all[a] = true
				}
			}
			sleep(t, w, 61*time.Second)
		}
		for i := range byVantage {
			for j := range i {
				same := slices.Equal(byVantage[i], byVantage[j])
				if sameRegion := i%3 == j%3; same != sameRegion {
					t.Errorf("%s: vantages %d and %d (same region: %v) see %v and %v", d.Name, j, i, sameRegion, byVantage[j], byVantage[i])
				}
			}
		}
		if n := len(asnsOf(t, w, slices.Collect(maps.Keys(all)))); n > 2 || d.ASNs > 2 || len(all) != d.Addresses {
			t.Errorf("%s: %d addresses in %d ASNs; truth %+v", d.Name, len(all), n, d)
		}
	}
}

func TestPoolLooksLikeFlux(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 31, Speed: faster})
	d := firstOfKind(t, w, simnet.KindPool)
	if !d.Allowlisted || d.Class != simnet.ClassBenign || d.TTL != 150 {
		t.Errorf("pool truth %+v", d)
	}
	seen := make(map[netip.Addr]bool)
	for range 12 {
		for i, v := range w.Vantages() {
			got := addrs(query(t, v, "udp", d.Name, dns.TypeA))
			if len(got) != 4 {
				t.Fatalf("%s via vantage %d: %v, want 4 addresses", d.Name, i, got)
			}
			for _, a := range got {
				seen[a] = true
			}
		}
		sleep(t, w, 151*time.Second)
	}
	if n := len(asnsOf(t, w, slices.Collect(maps.Keys(seen)))); n < 30 {
		t.Errorf("%s: %d addresses in %d ASNs over 12 epochs, want ≥ 30 ASNs", d.Name, len(seen), n)
	}
}

func TestMigrationSwitchesOnce(t *testing.T) {
	t.Parallel()
	const speed = 1500 // the switch, 10 to 15 minutes in, comes 0.4 to 0.6 s after Start
	w := start(t, simnet.Config{Seed: 32, Vantages: 2, Speed: speed})
	ds := ofKind(t, w, simnet.KindMigration)
	sets := make([][][]netip.Addr, len(ds))
	for w.Now().Before(simnet.DefaultStart.Add(26 * time.Minute)) {
		for i, d := range ds {
			got := addrs(query(t, w.Vantages()[1], "udp", d.Name, dns.TypeA))
			if len(got) != 2 || len(asnsOf(t, w, got)) != 1 {
				t.Fatalf("%s: %v, want 2 addresses in one ASN", d.Name, got)
			}
			if n := len(sets[i]); n == 0 || !slices.Equal(sets[i][n-1], got) {
				sets[i] = append(sets[i], got)
			}
		}
		sleep(t, w, 100*time.Second)
	}
	for i, d := range ds {
		if len(sets[i]) != 2 {
			t.Errorf("%s: answers %v, want exactly one switch", d.Name, sets[i])
			continue
		}
		before, after := asnsOf(t, w, sets[i][0]), asnsOf(t, w, sets[i][1])
		for asn := range before {
			if after[asn] {
				t.Errorf("%s moved within AS%d", d.Name, asn)
			}
		}
	}
}

func TestSlowFluxAnswers(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 33, Speed: faster})
	for _, d := range ofKind(t, w, simnet.KindSlowFlux) {
		seen := make(map[netip.Addr]bool)
		for range 3 {
			for i, v := range w.Vantages() {
				resp := query(t, v, "udp", d.Name, dns.TypeA)
				got := addrs(resp)
				if len(got) < 5 || len(got) > 8 || len(asnsOf(t, w, got)) != len(got) || ttlOf(t, resp) > d.TTL {
					t.Errorf("%s via vantage %d: %v; want 5..8 addresses in as many ASNs, TTL ≤ %d", d.Name, i, got, d.TTL)
				}
				for _, a := range got {
					seen[a] = true
				}
			}
			sleep(t, w, seconds(4*d.TTL+1))
		}
		if n := len(asnsOf(t, w, slices.Collect(maps.Keys(seen)))); n < 10 {
			t.Errorf("%s: %d ASNs over 3 periods and %d vantages", d.Name, n, len(w.Vantages()))
		}
	}
}

func TestNarrowFluxStaysInThreeASNs(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 34, Speed: faster})
	for _, d := range ofKind(t, w, simnet.KindNarrowFlux) {
		seen := make(map[netip.Addr]bool)
		var prev []netip.Addr
		changes := 0
		for round := range 10 {
			for i, v := range w.Vantages() {
				got := addrs(query(t, v, "udp", d.Name, dns.TypeA))
				if len(got) < 4 || len(got) > 8 {
					t.Fatalf("%s via vantage %d: %v, want 4..8 addresses", d.Name, i, got)
				}
				if i == 0 && round > 0 && !slices.Equal(got, prev) {
					changes++
				}
				if i == 0 {
					prev = got
				}
				for _, a := range got {
					seen[a] = true
				}
			}
			sleep(t, w, seconds(d.TTL+1))
		}
		p16, p24 := make(map[netip.Prefix]bool), make(map[netip.Prefix]bool)
		for a := range seen {
			p16[netip.PrefixFrom(a, 16).Masked()] = true
			p24[netip.PrefixFrom(a, 24).Masked()] = true
		}
		asns := asnsOf(t, w, slices.Collect(maps.Keys(seen)))
		if len(asns) != 3 || len(p16) < 8 || len(p24) < len(seen)*3/4 || changes < 8 {
			t.Errorf("%s: %d addresses, %d /24s, %d /16s, %d ASNs, %d changes in 9 epochs; want 3 ASNs, ≥ 8 /16s, mostly distinct /24s, a change every epoch",
				d.Name, len(seen), len(p24), len(p16), len(asns), changes)
		}
	}
}

func TestWriteAllowlist(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 35, Vantages: 1, Pools: 3})
	var buf bytes.Buffer
	if err := w.WriteAllowlist(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "# ") {
		t.Errorf("allowlist header %q", lines[0])
	}
	var pools []string
	for _, d := range w.Domains() {
		if d.Kind == simnet.KindPool {
			pools = append(pools, d.Name)
		}
	}
	if !slices.Equal(lines[1:], pools) || len(pools) != 3 {
		t.Errorf("allowlist %q, want the pools %q", lines[1:], pools)
	}
	name := regexp.MustCompile(`^(pool\.[a-z]+-time|[0-3]\.pool\.[a-z]+)\.(test|example)$`)
	for _, p := range pools {
		if !name.MatchString(p) {
			t.Errorf("pool name %q", p)
		}
	}

	none := start(t, simnet.Config{Seed: 35, Vantages: 1, Pools: -1})
	buf.Reset()
	if err := none.WriteAllowlist(&buf); err != nil || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("allowlist of a world without pools: %q, %v", buf.String(), err)
	}
}
