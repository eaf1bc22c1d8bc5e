package storage

import (
	"fmt"
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
