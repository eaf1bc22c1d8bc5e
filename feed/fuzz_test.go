package feed

import (
	"fmt"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// applyIXFR applies an IXFR answer (RFC 1995 section 4) to the records of
// a secondary at some version and returns the records it ends with.
func applyIXFR(t *testing.T, have []string, answer []dns.RR) []string {
	t.Helper()
	cur, ok := answer[0].(*dns.SOA)
	if !ok || len(answer) < 2 {
		t.Fatalf("not an IXFR answer: %v", answer)
	}
	set := map[string]bool{}
	for _, k := range have {
		set[k] = true
	}
	body := answer[1 : len(answer)-1]
	adding := true // each old SOA starts deletions, each new SOA additions
	for _, rr := range body {
		if _, isSOA := rr.(*dns.SOA); isSOA {
			adding = !adding
			continue
		}
		if adding {
			set[rr.String()] = true
		} else if !set[rr.String()] {
			t.Fatalf("IXFR deletes %s, which the secondary does not have", rr)
		} else {
			delete(set, rr.String())
		}
	}
	if last := answer[len(answer)-1].(*dns.SOA); last.Serial != cur.Serial || !adding {
		t.Fatalf("IXFR does not end with the current SOA after an addition section")
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// FuzzIXFR publishes versions whose listed names the input picks, then
// checks that a secondary at any kept version that applies the IXFR answer
// ends with exactly the current zone.
func FuzzIXFR(f *testing.F) {
	f.Add([]byte{0x0f, 0xf0, 0x33, 0x00, 0xff})
	f.Add([]byte{0x01, 0x01, 0x01})
	f.Add([]byte{0xaa, 0x55, 0xaa, 0x55, 0x81, 0x7e})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 32 {
			data = data[:32]
		}
		const zone = "fluxwatch.rpz."
		var versions []*version
		var prev *version
		for i, b := range data {
			var names []string
			for bit := range 8 {
				if b&(1<<bit) != 0 {
					names = append(names, fmt.Sprintf("n%d.test", bit))
				}
			}
			v, err := newVersion(zone, testZone(t, uint32(100+i), names...), prev, 4)
			if err != nil {
				t.Fatal(err)
			}
			versions = append(versions, v)
			prev = v
		}
		if prev == nil {
			return
		}
		want := prev.keys
		for i, old := range versions {
			rrs, incremental := prev.ixfr(old.serial())
			kept := len(versions)-1-i <= 4
			switch {
			case old == prev:
				if len(rrs) != 1 {
					t.Fatalf("up to date: %d records", len(rrs))
				}
			case incremental != kept:
				t.Fatalf("version %d of %d: incremental %v", i, len(versions), incremental)
			case incremental:
				if got := applyIXFR(t, old.keys, rrs); !slices.Equal(got, want) {
					t.Fatalf("from serial %d the secondary ends with\n%v\nwant\n%v", old.serial(), got, want)
				}
			}
		}
	})
}
