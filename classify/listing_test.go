package classify

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/storage"
)

// A listing lives from the first flux verdict until Expiry after the last
// one, whatever the verdicts in between; delisting by hand takes it off
// until relisted; every change is logged and every publish records what it
// added and removed.
func TestListingLifecycle(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	store.AddDomains([]string{"x.test", "y.test"}, "", t0)
	rng := rand.New(rand.NewPCG(41, 42))
	flux := func(at time.Time) {
		t.Helper()
		probes := world{rounds: 3, vantages: 3, ttl: 60, addrs: func(int, int) []string { return spread(rng, 30, 5) }}.probes("x.test")
		for i := range probes {
			probes[i].Start = at.Add(probes[i].Start.Sub(t0))
		}
		if _, err := store.WriteProbes(probes); err != nil {
			t.Fatal(err)
		}
	}
	c := Classifier{Meta: asnTable(t), Expiry: 2 * time.Hour}
	run := func(now time.Time) map[string]int {
		t.Helper()
		counts, err := c.Run(context.Background(), store, time.Hour, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	listed := func() []Verdict {
		t.Helper()
		var vs []Verdict
		if err := Each(store, true, func(v Verdict) error { vs = append(vs, v); return nil }); err != nil {
			t.Fatal(err)
		}
		return vs
	}
	publish := func(now time.Time, added, removed []string) {
		t.Helper()
		rec, err := store.RecordPublish(now)
		if err != nil || !slices.Equal(rec.Added, added) || !slices.Equal(rec.Removed, removed) {
			t.Fatalf("publish at %s: %+v, %v; want added %v removed %v", now.Sub(t0), rec, err, added, removed)
		}
	}

	flux(t0)
	t1 := t0.Add(30 * time.Minute)
	if counts := run(t1); counts[SingleFlux] != 1 || counts[CountAdded] != 1 || counts[CountListed] != 1 {
		t.Fatalf("first run: %v", counts)
	}
	l := listed()
	// The listing runs from the evidence: the last probe, at t0+4m.
	lastProbe := t0.Add(4 * time.Minute)
	if len(l) != 1 || l[0].Domain != "x.test" || l[0].Listing == nil || !l[0].Listing.FirstListed.Equal(t1) ||
		!l[0].Listing.LastConfirmed.Equal(lastProbe) || !l[0].Listing.ExpiresAt.Equal(lastProbe.Add(2*time.Hour)) {
		t.Fatalf("listed after the flux verdict: %+v", l)
	}
	publish(t1, []string{"x.test"}, []string{})

	// Later, with the flux over (one stable answer since), the window
	// ending at the last probe holds no flux, but the listing has not
	// expired.
	t2 := t1.Add(90 * time.Minute)
	stable := world{rounds: 1, vantages: 1, ttl: 60, addrs: func(int, int) []string { return []string{"10.1.1.1"} }}.probes("x.test")
	stable[0].Start = t2.Add(-time.Minute)
	stable[0].Observations[0].Time = stable[0].Start
	if _, err := store.WriteProbes(stable); err != nil {
		t.Fatal(err)
	}
	if counts := run(t2); counts[SingleFlux] != 0 || counts[CountExpired] != 0 || counts[CountListed] != 1 {
		t.Fatalf("second run: %v", counts)
	}
	if l := listed(); len(l) != 1 || l[0].Verdict != SingleFlux || !l[0].Listing.LastConfirmed.Equal(lastProbe) {
		t.Fatalf("listed before expiry: %+v", l)
	}
	var full []Verdict
	Each(store, false, func(v Verdict) error { full = append(full, v); return nil })
	if full[0].Verdict == SingleFlux || full[0].Listing == nil || !full[0].Listed() {
		t.Fatalf("full verdict before expiry: %+v", full[0])
	}
	publish(t2, []string{}, []string{})

	// Past the expiry it leaves the list.
	t3 := t1.Add(2*time.Hour + time.Minute)
	if counts := run(t3); counts[CountExpired] != 1 || counts[CountListed] != 0 {
		t.Fatalf("third run: %v", counts)
	}
	if l := listed(); len(l) != 0 {
		t.Fatalf("listed after expiry: %+v", l)
	}
	publish(t3, []string{}, []string{"x.test"})

	// New flux lists it again, from the new verdict.
	t4 := t3.Add(time.Hour)
	flux(t4.Add(-10 * time.Minute))
	run(t4)
	if l := listed(); len(l) != 1 || !l[0].Listing.FirstListed.Equal(t4) {
		t.Fatalf("listed again: %+v", l)
	}

	// Delisted by hand: off the list at once and at the next run.
	if err := Delist(store, "x.test", "false positive", t4); err != nil {
		t.Fatal(err)
	}
	if l := listed(); len(l) != 0 {
		t.Fatalf("listed after delisting: %+v", l)
	}
	if counts := run(t4.Add(time.Minute)); counts["listings_added"] != 0 || len(listed()) != 0 {
		t.Fatalf("a delisted domain was listed again: %v", counts)
	}
	if ok, err := Relist(store, "x.test", "", t4.Add(2*time.Minute)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	run(t4.Add(3 * time.Minute))
	if len(listed()) != 1 {
		t.Fatal("not listed again after relisting")
	}
	if err := Delist(store, "nope.test", "", t4); err == nil {
		t.Fatal("delisted a domain that is not seeded")
	}

	// Flux measured long ago (an import) is judged on its own time, but
	// evidence older than the expiry lists nothing.
	old := t0.Add(-48 * time.Hour)
	probes := world{rounds: 3, vantages: 3, ttl: 60, addrs: func(int, int) []string { return spread(rng, 30, 5) }}.probes("y.test")
	for i := range probes {
		probes[i].Start = old.Add(probes[i].Start.Sub(t0))
	}
	if _, err := store.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	var y Verdict
	c.Run(context.Background(), store, time.Hour, t4.Add(4*time.Minute), func(v Verdict) error {
		if v.Domain == "y.test" {
			y = v
		}
		return nil
	})
	if y.Verdict != SingleFlux || y.Listing != nil {
		t.Fatalf("old flux: %s, listing %+v", y.Verdict, y.Listing)
	}

	var events []string
	History(store, "x.test", func(e ListingEvent) error { events = append(events, e.Event); return nil })
	want := []string{EventListed, EventExpired, EventListed, EventDelisted, EventRelisted, EventListed}
	if !slices.Equal(events, want) {
		t.Fatalf("listing log %v; want %v", events, want)
	}
	if pubs, err := store.Publishes(10); err != nil || len(pubs) != 3 || !pubs[0].Time.Equal(t3) {
		t.Fatalf("publishes %+v, %v", pubs, err)
	}
}
