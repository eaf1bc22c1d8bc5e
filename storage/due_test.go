package storage

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// A measured domain's dark count is kept beside its next-due time: set by
// SetMeasured, kept by SetNextDue (a lease is not a measurement), read by
// DarkCounts, Domain and Domains, and capped at MaxDark.
func TestDarkCountsBesideNextDue(t *testing.T) {
	s := openTest(t)
	var names []string
	for i := range 1200 { // three chunks
		names = append(names, fmt.Sprintf("d%04d.test", i))
	}
	if _, err := s.AddDomains(names, "feed", t0); err != nil {
		t.Fatal(err)
	}
	far := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC) // still fits in 56 bits
	ms := []Measured{
		{Domain: "d0001.test", At: t0.Add(2 * time.Hour), Dark: 3},
		{Domain: "d0700.test", At: far, Dark: 1000},
		{Domain: "d1100.test", At: t0.Add(time.Hour), Dark: 0},
		{Domain: "nope.test", At: t0, Dark: 9},
	}
	if err := s.SetMeasured(ms); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		got, err := s.DarkCounts([]string{"d0001.test", "d0700.test", "d1100.test", "d0002.test", "nope.test"})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{3, MaxDark, 0, 0, 0}; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: dark counts %v; want %v", when, got, want)
		}
		d, _, _ := s.Domain("d0700.test")
		if d.Dark != MaxDark || !d.NextDue.Equal(far) {
			t.Fatalf("%s: d0700 %+v", when, d)
		}
		seen := 0
		s.Domains(func(d Domain) error {
			if d.Name == "d0001.test" && d.Dark == 3 {
				seen++
			}
			return nil
		})
		if seen != 1 {
			t.Fatalf("%s: Domains does not show d0001's dark count", when)
		}
	}
	check("after SetMeasured")
	// The same with no ids cached (DarkCounts looks them up in the
	// transaction then).
	s.wmu.Lock()
	clear(s.domainIDs)
	s.wmu.Unlock()
	check("with no ids cached")
	// A lease moves the time and keeps the count.
	if err := s.SetNextDue([]Due{{"d0001.test", t0.Add(3 * time.Hour)}, {"d0700.test", far}}); err != nil {
		t.Fatal(err)
	}
	check("after SetNextDue")
	if d, _, _ := s.Domain("d0001.test"); !d.NextDue.Equal(t0.Add(3 * time.Hour)) {
		t.Fatalf("next due %v after SetNextDue", d.NextDue)
	}
	// The count does not leak into the time: the domain is due when it says.
	if due, _ := s.Due(t0.Add(3 * time.Hour)); len(due) != len(names)-1 {
		t.Fatalf("%d due at +3h; want all but d0700", len(due))
	}
	// An answer clears it.
	if err := s.SetMeasured([]Measured{{Domain: "d0001.test", At: t0}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.DarkCounts([]string{"d0001.test"}); got[0] != 0 {
		t.Fatalf("dark count %d after an answer", got[0])
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}
