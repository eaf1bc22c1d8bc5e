package storage

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// Prune deletes exactly the probes older than the cutoff, across domains,
// in transactions of the given size, and the rest of the history stays
// readable and consistent.
func TestPrune(t *testing.T) {
	s := openTest(t)
	domains := []string{"a.test", "b.test", "c.test"}
	s.AddDomains(domains, "", t0)
	var ps []obs.Probe
	for i := range 10 {
		for _, d := range domains {
			ps = append(ps, probe(d, "127.0.0.1:53", t0.Add(time.Duration(i)*time.Hour), fmt.Sprintf("192.0.2.%d", i+1)))
		}
	}
	if _, err := s.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(t0.Add(4*time.Hour), 4) // 12 probes to go, 4 at a time
	if err != nil || n != 12 {
		t.Fatalf("pruned %d, %v; want 12", n, err)
	}
	for _, d := range domains {
		var starts []time.Time
		s.History(d, time.Time{}, t0.Add(100*time.Hour), func(p obs.Probe) error { starts = append(starts, p.Start); return nil })
		if len(starts) != 6 || !starts[0].Equal(t0.Add(4*time.Hour)) {
			t.Fatalf("%s after pruning: %v", d, starts)
		}
	}
	if n, err := s.Prune(t0.Add(4*time.Hour), 4); n != 0 || err != nil {
		t.Fatalf("pruning again: %d, %v", n, err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// A publish record says which kind of publish it was and compares with the
// previous publish, whatever its kind: a start-up publish of an unchanged
// list adds nothing.
func TestRecordPublishKinds(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"a.test", "b.test"}, "", t0)
	listed := []byte(`{}`)
	if err := s.PutVerdicts([]VerdictRecord{{Domain: "a.test", Full: listed, Listed: listed}, {Domain: "b.test", Full: listed, Listed: listed}}); err != nil {
		t.Fatal(err)
	}
	first, err := s.RecordPublish(t0)
	if err != nil || first.Kind != PublishScheduled || first.Listed != 2 || len(first.Added) != 2 {
		t.Fatalf("first publish %+v, %v", first, err)
	}
	start, err := s.RecordPublishOf(t0.Add(time.Minute), PublishStart)
	if err != nil || start.Kind != PublishStart || start.Listed != 2 || len(start.Added) != 0 || len(start.Removed) != 0 {
		t.Fatalf("start-up publish of the same list %+v, %v", start, err)
	}
	pubs, err := s.Publishes(2)
	if err != nil || len(pubs) != 2 || pubs[0].Kind != PublishStart || pubs[1].Kind != PublishScheduled {
		t.Fatalf("publishes %+v, %v", pubs, err)
	}
}

// Each verdict is read with its own record of the listed index, or none:
// the two buckets are walked side by side.
func TestVerdictsAndListings(t *testing.T) {
	s := openTest(t)
	var recs []VerdictRecord
	for _, d := range []struct {
		name   string
		listed bool
	}{{"a.test", false}, {"b.test", true}, {"c.test", false}, {"d.test", false}, {"e.test", true}, {"f.test", true}} {
		r := VerdictRecord{Domain: d.name, Full: []byte("full " + d.name)}
		if d.listed {
			r.Listed = []byte("listed " + d.name)
		}
		recs = append(recs, r)
	}
	if err := s.PutVerdicts(recs); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.VerdictsAndListings(func(domain string, full, listed []byte) error {
		got = append(got, fmt.Sprintf("%s|%s|%s", domain, full, listed))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a.test|full a.test|", "b.test|full b.test|listed b.test", "c.test|full c.test|", "d.test|full d.test|",
		"e.test|full e.test|listed e.test", "f.test|full f.test|listed f.test"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	full, listed, err := s.VerdictAndListing("e.test")
	if err != nil || string(full) != "full e.test" || string(listed) != "listed e.test" {
		t.Fatalf("VerdictAndListing(e.test): %q %q %v", full, listed, err)
	}
	if full, listed, err := s.VerdictAndListing("c.test"); err != nil || string(full) != "full c.test" || listed != nil {
		t.Fatalf("VerdictAndListing(c.test): %q %q %v", full, listed, err)
	}
	if err := s.Delist("e.test", Delisting{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, listed, _ := s.VerdictAndListing("e.test"); listed != nil {
		t.Fatalf("delisted e.test still has a listed record %q", listed)
	}
}

// ActiveNames passes the active domains only, in name order.
func TestActiveNames(t *testing.T) {
	s := openTest(t)
	if _, err := s.AddDomains([]string{"c.test", "a.test", "b.test"}, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveDomains([]string{"b.test"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.ActiveNames(func(n string) error { got = append(got, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a.test", "c.test"}) {
		t.Fatalf("active %v", got)
	}
}
