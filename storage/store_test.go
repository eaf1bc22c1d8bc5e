package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/fluxwatch/fluxwatch/obs"
)

// openTest opens a store in a temporary directory and checks its
// consistency when the test ends.
func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("check: %v", err)
		}
		s.Close()
	})
	return s
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func probe(domain, vantage string, at time.Time, addrs ...string) obs.Probe {
	var rs []obs.Record
	for _, a := range addrs {
		rs = append(rs, obs.Record{Name: domain, Type: dns.TypeA, TTL: 60, Data: a})
	}
	obs.Sort(rs)
	return obs.Probe{Domain: domain, Vantage: vantage, Start: at, Observations: []obs.Observation{
		{Time: at.Add(3 * time.Millisecond), Vantage: vantage, Name: domain, QType: dns.TypeA, Flags: obs.FlagRA, RTT: 2 * time.Millisecond, Answer: rs},
		{Time: at.Add(4 * time.Millisecond), Vantage: vantage, Name: domain, QType: dns.TypeNS, Flags: obs.FlagRA, Answer: []obs.Record{
			{Name: domain, Type: dns.TypeNS, TTL: 86400, Data: "ns1.host.test"},
			{Name: domain, Type: dns.TypeNS, TTL: 86400, Data: "ns2.host.test"},
		}},
		{Time: at.Add(5 * time.Millisecond), Vantage: vantage, Name: "ns1.host.test", QType: dns.TypeA, Flags: obs.FlagRA, Answer: []obs.Record{
			{Name: "ns1.host.test", Type: dns.TypeA, TTL: 3600, Data: "192.0.2.53"},
		}},
		{Time: at.Add(6 * time.Millisecond), Vantage: vantage, Name: domain, QType: dns.TypeAAAA, Rcode: dns.RcodeServerFailure, Err: obs.ServFail},
	}}
}

func TestProbeRoundTrip(t *testing.T) {
	s := openTest(t)
	if _, err := s.AddDomains([]string{"flux.test", "other.test"}, "unit", t0); err != nil {
		t.Fatal(err)
	}
	want := []obs.Probe{
		probe("flux.test", "127.0.0.1:5301", t0, "198.51.100.1", "203.0.113.7"),
		probe("flux.test", "127.0.0.1:5302", t0.Add(time.Second), "2001:db8::1"),
		probe("flux.test", "127.0.0.1:5301", t0.Add(time.Minute), "198.51.100.9"),
		probe("other.test", "127.0.0.1:5301", t0.Add(30*time.Second), "192.0.2.1"),
	}
	// Written out of order and in two batches: history must come back in time order.
	if _, err := s.WriteProbes([]obs.Probe{want[2], want[3]}); err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteProbes([]obs.Probe{want[1], want[0]})
	if err != nil || n != 8 {
		t.Fatalf("WriteProbes = %d, %v; want 8 observations", n, err)
	}
	var got []obs.Probe
	if err := s.History("flux.test", time.Time{}, time.Time{}, func(p obs.Probe) error { got = append(got, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want[:3]) {
		t.Fatalf("history:\n got %+v\nwant %+v", got, want[:3])
	}
	// A window selects by start time.
	got = nil
	s.History("flux.test", t0.Add(time.Second), t0.Add(time.Minute), func(p obs.Probe) error { got = append(got, p); return nil })
	if len(got) != 1 || !got[0].Start.Equal(t0.Add(time.Second)) {
		t.Fatalf("windowed history = %+v", got)
	}
}

func TestAnswerSetsInterned(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"a.test"}, "", t0)
	var ps []obs.Probe
	for i := range 50 {
		ps = append(ps, probe("a.test", "127.0.0.1:53", t0.Add(time.Duration(i)*time.Minute), "192.0.2.1", "192.0.2.2"))
	}
	if _, err := s.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats()
	// Two distinct answers stored as sets (the two A records, the NS; the
	// NS host's one address is inline, the SERVFAIL has none), however many
	// probes.
	if st.AnswerSets != 2 || st.Probes != 50 {
		t.Fatalf("stats = %+v; want 2 answer sets, 50 probes", st)
	}
}

func TestSecondOpenerGetsLockError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = Open(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v; want ErrLocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("lock error took %v", d)
	}
}

func TestUnknownDomainFailsWholeBatch(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"known.test"}, "", t0)
	_, err := s.WriteProbes([]obs.Probe{probe("known.test", "v", t0, "192.0.2.1"), probe("stranger.test", "v", t0, "192.0.2.1")})
	if !errors.Is(err, ErrUnknownDomain) {
		t.Fatalf("err = %v", err)
	}
	if st, _ := s.Stats(); st.Probes != 0 {
		t.Fatalf("a failed batch left %d probes", st.Probes)
	}
}

// A shard's database keeps the seeds it owns and hands the others over,
// for adding and for removing alike.
func TestShardOwnershipOfSeeds(t *testing.T) {
	s := openTest(t)
	var added, removed []string
	s.SetOwnership(&Ownership{
		Owns:            func(n string) bool { return strings.HasPrefix(n, "mine") },
		Elsewhere:       func(names []string, source string) error { added = append(added, names...); return nil },
		RemoveElsewhere: func(names []string) error { removed = append(removed, names...); return nil },
	})
	res, err := s.AddDomains([]string{"mine1.test", "theirs1.test", "mine2.test"}, "feed", time.Now())
	if err != nil || res.Added != 2 || res.Elsewhere != 1 || !slices.Equal(added, []string{"theirs1.test"}) {
		t.Fatalf("AddDomains = %+v, %v; handed over %v", res, err, added)
	}
	if _, ok, _ := s.Domain("theirs1.test"); ok {
		t.Error("a name another shard owns was kept")
	}
	rr, err := s.RemoveDomains([]string{"mine1.test", "theirs2.test"})
	if err != nil || rr.Removed != 1 || rr.Elsewhere != 1 || !slices.Equal(removed, []string{"theirs2.test"}) {
		t.Fatalf("RemoveDomains = %+v, %v; handed over %v", rr, err, removed)
	}
	s.SetOwnership(&Ownership{Owns: func(string) bool { return false },
		Elsewhere: func([]string, string) error { return errors.New("no NATS") }})
	if _, err := s.AddDomains([]string{"x.test"}, "feed", time.Now()); err == nil {
		t.Error("a failure to hand names over was not an error")
	}
}

func TestAddRemoveDomains(t *testing.T) {
	s := openTest(t)
	r, _ := s.AddDomains([]string{"a.test", "b.test"}, "feed1", t0)
	if r.Added != 2 {
		t.Fatalf("%+v", r)
	}
	r, _ = s.AddDomains([]string{"a.test", "c.test"}, "feed2", t0.Add(time.Hour))
	if r.Added != 1 || r.Known != 1 {
		t.Fatalf("%+v", r)
	}
	d, _, _ := s.Domain("a.test")
	if !reflect.DeepEqual(d.Sources, []string{"feed1", "feed2"}) || !d.FirstSeen.Equal(t0) {
		t.Fatalf("a.test = %+v", d)
	}
	if res, _ := s.RemoveDomains([]string{"a.test", "nope.test"}); res.Removed != 1 || res.Elsewhere != 0 {
		t.Fatalf("removed %+v", res)
	}
	d, _, _ = s.Domain("a.test")
	if d.Active {
		t.Fatal("removed domain still active")
	}
	r, _ = s.AddDomains([]string{"a.test"}, "feed1", t0)
	if d2, _, _ := s.Domain("a.test"); !d2.Active || d2.ID != d.ID || r.Added != 1 {
		t.Fatalf("re-added: %+v %+v", d2, r)
	}
}

func TestSetNextDueKeepsTheRestOfTheRecord(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"a.test", "b.test", "c.test"}, "feed1", t0)
	s.AddDomains([]string{"b.test"}, "feed2", t0)
	before, _, _ := s.Domain("b.test")
	// Unsorted, with a name that is not seeded: that one is skipped.
	if err := s.SetNextDue([]Due{{"c.test", t0.Add(time.Hour)}, {"nope.test", t0}, {"b.test", t0.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	after, _, _ := s.Domain("b.test")
	want := before
	want.NextDue = t0.Add(time.Minute)
	if !reflect.DeepEqual(after, want) {
		t.Fatalf("b.test = %+v; want %+v", after, want)
	}
	// Set again, and twice in one call: the later time wins.
	if err := s.SetNextDue([]Due{{"b.test", t0.Add(5 * time.Hour)}, {"b.test", t0.Add(2 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := s.Domain("b.test"); !d.NextDue.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("b.test due %v after two times in one call; want the later one given", d.NextDue)
	}
	if due, _ := s.Due(t0.Add(30 * time.Minute)); !reflect.DeepEqual(due, []string{"a.test"}) {
		t.Fatalf("due at +30m: %v", due)
	}
	if due, _ := s.Due(t0.Add(2 * time.Hour)); !reflect.DeepEqual(due, []string{"a.test", "b.test", "c.test"}) {
		t.Fatalf("due at +2h: %v", due)
	}
}

// Times are kept in chunks by domain id; many domains span many chunks,
// and the ids the writer has cached (after Active) take the same path as
// those it has not.
func TestNextDueAcrossChunks(t *testing.T) {
	s := openTest(t)
	var names []string
	for i := range 3*dueChunk + 7 {
		names = append(names, fmt.Sprintf("d%04d.test", i))
	}
	s.AddDomains(names, "f", t0)
	var due []Due
	for i, n := range names {
		if i%3 != 0 {
			due = append(due, Due{n, t0.Add(time.Duration(i) * time.Minute)})
		}
	}
	if err := s.SetNextDue(due[:len(due)/2]); err != nil { // ids looked up
		t.Fatal(err)
	}
	if _, err := s.Active(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNextDue(due[len(due)/2:]); err != nil { // ids cached
		t.Fatal(err)
	}
	for i, n := range names {
		d, _, _ := s.Domain(n)
		want := time.Time{}
		if i%3 != 0 {
			want = t0.Add(time.Duration(i) * time.Minute)
		}
		if !d.NextDue.Equal(want) {
			t.Fatalf("%s: next due %v; want %v", n, d.NextDue, want)
		}
	}
	got, _ := s.Due(t0.Add(10 * time.Minute))
	want := []string{}
	for i, n := range names {
		if i%3 == 0 || i <= 10 {
			want = append(want, n)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("due at +10m: %d names; want %d", len(got), len(want))
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestSerialMonotonic(t *testing.T) {
	s := openTest(t)
	a, _ := s.NextSerial(t0)
	b, _ := s.NextSerial(t0) // clock did not move
	c, _ := s.NextSerial(t0.Add(-time.Hour))
	if !(a < b && b < c) {
		t.Fatalf("serials %d %d %d not increasing", a, b, c)
	}
}

// A serial served from elsewhere (a file the database does not know of)
// is never handed out again nor undercut; raising to a lower floor
// changes nothing.
func TestRaiseSerial(t *testing.T) {
	s := openTest(t)
	a, _ := s.NextSerial(t0)
	floor := a + 1000
	if err := s.RaiseSerial(floor); err != nil {
		t.Fatal(err)
	}
	b, _ := s.NextSerial(t0)
	if err := s.RaiseSerial(a); err != nil {
		t.Fatal(err)
	}
	c, _ := s.NextSerial(t0)
	if b != floor+1 || c != b+1 {
		t.Fatalf("serials %d, then %d and %d after raising to %d; want %d, %d", a, b, c, floor, floor+1, floor+2)
	}
}

func TestWriterBatchesAndReportsCommitted(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"w.test"}, "", t0)
	w := s.NewWriter(WriterOptions{MaxBatch: 10, MaxDelay: time.Hour})
	for i := range 25 {
		if err := w.Write(context.Background(), probe("w.test", "v", t0.Add(time.Duration(i)*time.Second), "192.0.2.1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if p, o := w.Committed(); p != 25 || o != 100 {
		t.Fatalf("committed %d probes %d observations", p, o)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, p := range [][]byte{{0x05}, {0x01, 0xff}, {0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff}} {
		if _, err := decodeProbe(p); !errors.Is(err, errCorrupt) {
			t.Errorf("decodeProbe(%x) = %v", p, err)
		}
	}
}

func TestWriterFlushCommitsAtOnce(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"f.test"}, "", t0)
	w := s.NewWriter(WriterOptions{MaxBatch: 1000, MaxDelay: time.Hour})
	defer w.Close()
	for i := range 3 {
		w.Write(context.Background(), probe("f.test", "v", t0.Add(time.Duration(i)*time.Second), "192.0.2.1"))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.Probes != 3 {
		t.Fatalf("after Flush the database holds %d probes; want 3", st.Probes)
	}
}

func TestReleaseMemoryKeepsData(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"m.test"}, "", t0)
	s.WriteProbes([]obs.Probe{probe("m.test", "v", t0, "192.0.2.1")})
	if err := s.ReleaseMemory(); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.History("m.test", time.Time{}, time.Time{}, func(p obs.Probe) error { n += len(p.Observations); return nil })
	if n != 4 {
		t.Fatalf("after ReleaseMemory the history has %d observations", n)
	}
}

func TestCheckFindsBrokenReferences(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.AddDomains([]string{"c.test"}, "", t0)
	s.WriteProbes([]obs.Probe{probe("c.test", "v", t0, "192.0.2.1")})
	if err := s.Check(); err != nil {
		t.Fatalf("a sound database: %v", err)
	}
	// Remove an answer set that a probe refers to, and a domain's id entry.
	s.db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bucketSets).Delete(u64key(1))
		return tx.Bucket(bucketDomainID).Delete(u32key(1))
	})
	err = s.Check()
	for _, want := range []string{"answer set 1 missing", "domain c.test: id 1 not in the id table", "domain id 1 missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check() = %v; want it to say %q", err, want)
		}
	}
	s.Close()
}

func TestCompactKeepsEverythingAndRefusesALiveDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.AddDomains([]string{"k.test"}, "", t0)
	for i := range 200 {
		s.WriteProbes([]obs.Probe{probe("k.test", "v", t0.Add(time.Duration(i)*time.Minute), "192.0.2.1")})
	}
	var want []obs.Probe
	s.History("k.test", time.Time{}, time.Time{}, func(p obs.Probe) error { want = append(want, p); return nil })
	if _, _, err := Compact(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("compacting an open database: %v; want ErrLocked", err)
	}
	s.Close()
	before, after, err := Compact(path)
	if err != nil || after > before {
		t.Fatalf("Compact = %d → %d, %v", before, after, err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	var got []obs.Probe
	s.History("k.test", time.Time{}, time.Time{}, func(p obs.Probe) error { got = append(got, p); return nil })
	if !reflect.DeepEqual(got, want) {
		t.Fatal("history differs after compaction")
	}
	// Sequences survive: a new domain gets a fresh id.
	s.AddDomains([]string{"new.test"}, "", t0)
	if d, _, _ := s.Domain("new.test"); d.ID != 2 {
		t.Fatalf("new domain id %d after compaction; want 2", d.ID)
	}
}

// The probe codec keeps an observation's error class in errBits bits: a new
// class past 15 needs a new encoding (and schema version).
func TestErrClassesFitTheCodec(t *testing.T) {
	if n := len(obs.ErrClasses()); n > 1<<errBits {
		t.Fatalf("%d error classes; the codec holds %d", n, 1<<errBits)
	}
	o := []storedObs{{rcode: 255, err: obs.ErrClass(1<<errBits - 1), flags: 0xff}}
	back, err := decodeProbe(encodeProbe(o, nil))
	if err != nil || back[0].rcode != 255 || back[0].err != o[0].err || back[0].flags != 0xff {
		t.Fatalf("round trip %+v: %v", back, err)
	}
}

// One-address answers are stored inline and come back as they went in, for
// A and AAAA (an IPv4-mapped AAAA stays an AAAA), with their TTLs; other
// answers keep going through sets.
func TestInlineAnswersRoundTrip(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"i.test"}, "", t0)
	rec := func(typ uint16, ttl uint32, data string) []obs.Record {
		return []obs.Record{{Name: "i.test", Type: typ, TTL: ttl, Data: data}}
	}
	in := obs.Probe{Domain: "i.test", Vantage: "127.0.0.1:53", Start: t0, Observations: []obs.Observation{
		{Time: t0, Vantage: "127.0.0.1:53", Name: "i.test", QType: dns.TypeA, Answer: rec(dns.TypeA, 30, "192.0.2.9")},
		{Time: t0, Vantage: "127.0.0.1:53", Name: "i.test", QType: dns.TypeAAAA, Answer: rec(dns.TypeAAAA, 2147483647, "2001:db8::9")},
		{Time: t0, Vantage: "127.0.0.1:53", Name: "i.test", QType: dns.TypeAAAA, Answer: rec(dns.TypeAAAA, 5, "::ffff:192.0.2.1")},
		{Time: t0, Vantage: "127.0.0.1:53", Name: "i.test", QType: dns.TypeTXT, Answer: rec(dns.TypeTXT, 5, "hello")},
	}}
	if _, err := s.WriteProbes([]obs.Probe{in}); err != nil {
		t.Fatal(err)
	}
	var got []obs.Probe
	s.History("i.test", time.Time{}, time.Time{}, func(p obs.Probe) error { got = append(got, p); return nil })
	if len(got) != 1 || !reflect.DeepEqual(got[0].Observations, in.Observations) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in.Observations)
	}
	if st, _ := s.Stats(); st.AnswerSets != 1 {
		t.Fatalf("%d answer sets; only the TXT answer needs one", st.AnswerSets)
	}
}

// A reader whose transaction sees names a writer committed but has not yet
// put in the cache (the moment between the commit and the cache update)
// reads them from its transaction instead of failing.
func TestHistoryReadsNamesNotYetCached(t *testing.T) {
	s := openTest(t)
	s.AddDomains([]string{"a.test"}, "", t0)
	if _, err := s.WriteProbes([]obs.Probe{probe("a.test", "127.0.0.1:5301", t0, "192.0.2.1", "192.0.2.2")}); err != nil {
		t.Fatal(err)
	}
	// Forget every cached name, as if the writer had not published them.
	s.mu.Lock()
	cached := maps.Clone(s.ids)
	clear(s.ids)
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.ids = cached; s.mu.Unlock() }()
	var got []obs.Probe
	if err := s.History("a.test", time.Time{}, time.Time{}, func(p obs.Probe) error { got = append(got, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Vantage != "127.0.0.1:5301" || got[0].Observations[2].Name != "ns1.host.test" ||
		got[0].Observations[1].Answer[0].Data != "ns1.host.test" {
		t.Fatalf("history %+v", got)
	}
}
