package storage

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// An import stores each observation once: a probe imported again adds
// nothing, one that shares a key with a stored probe adds what it lacks,
// and the domains it names join the seed list under the import's source.
func TestImportMergesByProbeKey(t *testing.T) {
	s := openTest(t)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	obsA := func(addr string, off time.Duration) obs.Observation {
		return obs.Observation{Time: start.Add(off), Name: "m.example", QType: dns.TypeA, RTT: 1500 * time.Nanosecond,
			Answer: []obs.Record{{Name: "m.example", Type: dns.TypeA, TTL: 60, Data: addr}}}
	}
	probe := func(os ...obs.Observation) obs.Probe {
		return obs.Probe{Domain: "m.example", Vantage: "192.0.2.53:53", Start: start, Observations: os}
	}
	now := func() time.Time { return start }

	imp := s.NewImport("test-import", now, nil)
	for _, p := range []obs.Probe{
		probe(obsA("198.51.100.1", time.Millisecond)),
		probe(obsA("198.51.100.1", time.Millisecond)), // the same again: nothing new
		probe(obsA("198.51.100.2", 2*time.Millisecond)),
	} {
		if err := imp.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := imp.Close(); err != nil {
		t.Fatal(err)
	}
	if c := imp.Counts(); c != (ImportCounts{Read: 3, New: 1, Duplicate: 1, Merged: 1, Domains: 1}) {
		t.Fatalf("first import: %+v", c)
	}

	// A second import of one known and one new observation, in another
	// batch, merges into the stored probe.
	imp = s.NewImport("test-import", now, nil)
	imp.Add(probe(obsA("198.51.100.2", 2*time.Millisecond), obsA("198.51.100.3", 3*time.Millisecond)))
	imp.Add(probe(obsA("198.51.100.1", time.Millisecond)))
	if err := imp.Close(); err != nil {
		t.Fatal(err)
	}
	if c := imp.Counts(); c != (ImportCounts{Read: 2, Merged: 1, Duplicate: 1}) {
		t.Fatalf("second import: %+v", c)
	}
	var got []obs.Probe
	if err := s.History("m.example", start, start.Add(time.Second), func(p obs.Probe) error {
		got = append(got, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Observations) != 3 {
		t.Fatalf("stored %d probes (%+v); want one with 3 observations", len(got), got)
	}
	d, ok, err := s.Domain("m.example")
	if err != nil || !ok || len(d.Sources) != 1 || d.Sources[0] != "test-import" {
		t.Fatalf("domain: %+v %v %v", d, ok, err)
	}
}
