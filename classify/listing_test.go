package classify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
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

// cdnTable is asnTable with 172.16.0.0/12, sixteen /16s, in one ASN: a CDN.
func cdnTable(t *testing.T) *ipmeta.DB {
	t.Helper()
	var b strings.Builder
	for n := range 100 {
		fmt.Fprintf(&b, "10.%d.0.0\t10.%d.255.255\t%d\tZZ\tTEST-%d\n", n, n, 64500+n, n)
	}
	b.WriteString("172.16.0.0\t172.31.255.255\t64999\tUS\tCDN\n")
	tab, err := ipmeta.Load(strings.NewReader(b.String()), "cdn.tsv")
	if err != nil {
		t.Fatal(err)
	}
	db := &ipmeta.DB{}
	db.AddASN(tab)
	return db
}

// A listing follows the latest verdict: classified without IP tables, a
// CDN spread over many /16s is listed; classified again with the tables,
// on the same measurements, it is benign and its listing is cleared at
// once (logged with the reason), so the listed set is that of a run with
// the tables alone. True flux stays listed.
func TestListingClearedByBenignVerdict(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	var probes []obs.Probe
	probes = append(probes, world{rounds: 4, vantages: 3, ttl: 20, addrs: func(int, int) []string {
		var out []string
		for range 6 {
			out = append(out, fmt.Sprintf("172.%d.%d.%d", 16+rng.IntN(16), rng.IntN(4), 1+rng.IntN(254)))
		}
		return out
	}}.probes("cdn.test")...)
	probes = append(probes, world{rounds: 4, vantages: 3, ttl: 60, addrs: func(int, int) []string { return spread(rng, 30, 6) }}.probes("flux.test")...)
	open := func() *storage.Store {
		t.Helper()
		store, err := storage.Open(filepath.Join(t.TempDir(), "l.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		store.AddDomains([]string{"cdn.test", "flux.test"}, "", t0)
		if _, err := store.WriteProbes(probes); err != nil {
			t.Fatal(err)
		}
		return store
	}
	listed := func(store *storage.Store) []string {
		t.Helper()
		var names []string
		if err := Each(store, true, func(v Verdict) error { names = append(names, v.Domain); return nil }); err != nil {
			t.Fatal(err)
		}
		return names
	}
	run := func(store *storage.Store, c Classifier, now time.Time) map[string]int {
		t.Helper()
		counts, err := c.Run(context.Background(), store, time.Hour, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	now := t0.Add(30 * time.Minute)

	// Without tables nothing is listed, unless the operator asks for it;
	// then the CDN is listed with the flux.
	store := open()
	run(store, Classifier{}, now)
	if got := listed(store); len(got) != 0 {
		t.Fatalf("listed without IP tables: %v; want nothing", got)
	}
	if v, _ := Load(store, "cdn.test"); v == nil || !IsFlux(v.Verdict) || !strings.Contains(v.Evidence, "not listed: judged without an IP-to-ASN table") {
		t.Fatalf("the verdict without tables does not say why it is not listed: %+v", v)
	}
	run(store, Classifier{ListWithoutIPTables: true}, now)
	if got := listed(store); !slices.Equal(got, []string{"cdn.test", "flux.test"}) {
		t.Fatalf("listed without IP tables, list_without_ip_tables set: %v; want the CDN too", got)
	}
	// A dry run with the tables passes its verdicts on, stores nothing.
	dry := map[string]string{}
	counts, err := (&Classifier{Meta: cdnTable(t), DryRun: true}).Run(context.Background(), store, time.Hour, now.Add(time.Minute), func(v Verdict) error {
		if v.Listing != nil {
			t.Errorf("dry run verdict of %s has a listing", v.Domain)
		}
		dry[v.Domain] = v.Verdict
		return nil
	})
	if err != nil || dry["cdn.test"] != Benign || dry["flux.test"] != SingleFlux || counts[CountCleared] != 0 || counts[CountListed] != 0 {
		t.Fatalf("dry run: %v, %v, %v", dry, counts, err)
	}
	if v, err := Load(store, "cdn.test"); err != nil || v.Verdict != SingleFlux || !v.Listed() {
		t.Fatalf("cdn.test after a dry run: %+v, %v", v, err)
	}
	counts = run(store, Classifier{Meta: cdnTable(t)}, now.Add(time.Minute))
	tablesOnly := open()
	run(tablesOnly, Classifier{Meta: cdnTable(t)}, now.Add(time.Minute))
	if got, want := listed(store), listed(tablesOnly); !slices.Equal(got, want) || !slices.Equal(want, []string{"flux.test"}) {
		t.Fatalf("listed after a run with the tables: %v; a run with the tables alone lists %v", got, want)
	}
	if counts[CountCleared] != 1 || counts[CountListed] != 1 || counts[CountExpired] != 0 {
		t.Fatalf("counts of the run with the tables: %v", counts)
	}
	var events []ListingEvent
	History(store, "cdn.test", func(e ListingEvent) error { events = append(events, e); return nil })
	if len(events) != 2 || events[0].Event != EventListed || events[1].Event != EventCleared || events[1].Verdict != Benign ||
		!strings.Contains(events[1].Reason, "benign on the evidence it was listed on") || !strings.Contains(events[1].Reason, "CDN-like") {
		t.Fatalf("listing log of cdn.test: %+v", events)
	}
	if v, err := Load(store, "cdn.test"); err != nil || v == nil || v.Listed() || v.Verdict != Benign {
		t.Fatalf("cdn.test after clearing: %+v, %v", v, err)
	}
	// The tables go away: flux.test's listing runs on until it expires,
	// and then leaves with an event, as any listing does.
	if run(store, Classifier{}, now.Add(2*time.Minute)); !slices.Contains(listed(store), "flux.test") {
		t.Fatal("a listing ended before its expiry when the tables went away")
	}
	counts = run(store, Classifier{}, now.Add(DefaultExpiry+time.Hour))
	events = events[:0]
	History(store, "flux.test", func(e ListingEvent) error { events = append(events, e); return nil })
	if got := listed(store); len(got) != 0 || counts[CountExpired] != 1 || len(events) == 0 || events[len(events)-1].Event != EventExpired {
		t.Fatalf("without tables after the expiry: listed %v, counts %v, log %+v; want flux.test expired, with an event", got, counts, events)
	}
}

// Only a window that holds every probe of the verdict a listing rests on
// clears it: a window that slid past the flux (the flux stopped being
// observed) leaves the listing to expire.
func TestHoldsEvidence(t *testing.T) {
	listing := &Listing{LastConfirmed: t0.Add(30 * time.Minute)}
	prev := &Verdict{Listing: listing, Features: Features{FirstSeen: t0, LastSeen: t0.Add(30 * time.Minute)}}
	for _, tt := range []struct {
		last   time.Duration // the new verdict's last probe, after t0
		window time.Duration
		want   bool
	}{
		{30 * time.Minute, time.Hour, true},                // the same probes
		{30 * time.Minute, 30 * time.Minute, true},         // exactly them
		{50 * time.Minute, time.Hour, true},                // them and more
		{31 * time.Minute, 30 * time.Minute, false},        // the first probe slid out
		{2 * time.Hour, time.Hour, false},                  // the flux is past
		{30 * time.Minute, time.Nanosecond, false},         // an exploratory window
		{29 * time.Minute, time.Hour, false},               // older than the listing's evidence
		{30*time.Minute + time.Second, time.Minute, false}, // holds only the last probe
	} {
		v := &Verdict{Features: Features{LastSeen: t0.Add(tt.last)}}
		if got := holdsEvidence(v, prev, tt.window); got != tt.want {
			t.Errorf("last probe at +%s, window %s: %v, want %v", tt.last, tt.window, got, tt.want)
		}
	}
	// A listed record without features: its last confirmation stands for all.
	old := &Verdict{Listing: listing}
	if !holdsEvidence(&Verdict{Features: Features{LastSeen: t0.Add(40 * time.Minute)}}, old, 15*time.Minute) {
		t.Error("a window holding the last confirmation of a record without features does not hold its evidence")
	}
}
