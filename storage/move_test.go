package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/fluxwatch/fluxwatch/obs"
)

// shardState is everything the store's readers say of one domain.
type shardState struct {
	Domain          Domain
	Probes          []obs.Probe
	Verdict, Listed []byte
	Delisted        *Delisting
	Log             []LogEntry
	Published       bool
	Network         string
}

// shardStateOf reads name's state through the public readers (and the
// published bucket, which only RecordPublish reads); ok is false when the
// store does not know the domain.
func shardStateOf(t *testing.T, s *Store, name string) (st shardState, ok bool) {
	t.Helper()
	d, ok, err := s.Domain(name)
	if err != nil {
		t.Fatal(err)
	}
	st.Domain = d
	if ok {
		err = s.History(name, time.Time{}, time.Time{}, func(p obs.Probe) error { st.Probes = append(st.Probes, p); return nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	if st.Verdict, st.Listed, err = s.VerdictAndListing(name); err != nil {
		t.Fatal(err)
	}
	err = s.Delisted(func(domain string, d Delisting) error {
		if domain == name {
			st.Delisted = &d
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.ListingLog(name, func(at time.Time, event []byte) error {
		st.Log = append(st.Log, LogEntry{At: at, Event: slices.Clone(event)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		st.Published = tx.Bucket(bucketPublished).Get([]byte(name)) != nil
		return nil
	})
	if st.Network, err = s.NetworkOf(name); err != nil {
		t.Fatal(err)
	}
	return st, ok
}

// stateDiff names the fields in which two states differ, "" if none.
func stateDiff(got, want shardState) string {
	var out []string
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s: got %+v, want %+v", g.Type().Field(i).Name, g.Field(i), w.Field(i)))
		}
	}
	return strings.Join(out, "; ")
}

// shardProbe is probe's A, NS, name-server and SERVFAIL observations with
// a timeout and an inline AAAA answer beside them, so that a history holds
// answer sets, inline answers, interned names and errors.
func shardProbe(domain, vantage string, at time.Time, round int) obs.Probe {
	p := probe(domain, vantage, at, fmt.Sprintf("192.0.2.%d", round), fmt.Sprintf("198.51.100.%d", round%3))
	p.Observations = append(p.Observations,
		obs.Observation{Time: at.Add(7 * time.Millisecond), Vantage: vantage, Name: domain, QType: dns.TypeAAAA,
			Flags: obs.FlagRA | obs.FlagAA, RTT: 1500 * time.Microsecond,
			Answer: []obs.Record{{Name: domain, Type: dns.TypeAAAA, TTL: 300, Data: "2001:db8::" + fmt.Sprint(round+1)}}},
		obs.Observation{Time: at.Add(2 * time.Second), Vantage: vantage, Name: domain, QType: dns.TypeNS, Err: obs.Timeout})
	return p
}

// shardFixture fills s with eight domains holding every kind of record a
// domain can have, in several mixtures, and returns their names.
func shardFixture(t *testing.T, s *Store) []string {
	t.Helper()
	var names []string
	for i := range 8 {
		names = append(names, fmt.Sprintf("d%d.test", i))
	}
	if _, err := s.AddDomains(names[:6], "feed", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDomains(names[4:], "other", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var ps []obs.Probe
	for i, name := range names {
		for round := range 3 {
			for v, vantage := range []string{"127.0.0.1:5301", "127.0.0.1:5302", "[::1]:5303"} {
				at := t0.Add(time.Duration(round)*10*time.Minute + time.Duration(v)*time.Second + time.Duration(i)*time.Millisecond)
				ps = append(ps, shardProbe(name, vantage, at, i*3+round))
			}
		}
	}
	if _, err := s.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
	var ms []Measured
	for i, name := range names {
		ms = append(ms, Measured{Domain: name, At: t0.Add(time.Duration(i+1) * time.Hour), Dark: i % 5})
	}
	if err := s.SetMeasured(ms); err != nil {
		t.Fatal(err)
	}
	var vs []VerdictRecord
	for i, name := range names[:6] {
		v := VerdictRecord{Domain: name, Full: fmt.Appendf(nil, `{"domain":%q,"verdict":"flux"}`, name)}
		if i%2 == 0 {
			v.Listed = fmt.Appendf(nil, `{"score":%d}`, i)
			v.Event, v.EventTime = []byte(`{"event":"listed"}`), t0.Add(time.Duration(i)*time.Minute)
		}
		vs = append(vs, v)
	}
	if err := s.PutVerdicts(vs); err != nil {
		t.Fatal(err)
	}
	if err := s.Delist("d3.test", Delisting{Time: t0.Add(time.Hour), Reason: "a <test> & more"}, []byte(`{"event":"delisted"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordPublish(t0.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	// d2 leaves the list after the publish: its published mark stays
	// until the next one, and its log has two entries.
	err := s.PutVerdicts([]VerdictRecord{{Domain: "d2.test", Full: []byte(`{"verdict":"benign"}`),
		Event: []byte(`{"event":"cleared"}`), EventTime: t0.Add(3 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceNetworks([]NetworkRecord{{ID: "net-1", Domains: []string{"d0.test", "d1.test", "d6.test"}, JSON: []byte(`{}`)}}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveDomains([]string{"d7.test"}); err != nil {
		t.Fatal(err)
	}
	return names
}

// moveShard moves names from one store to another as the cluster does:
// their histories, through their JSON form, into to, then out of from.
func moveShard(t *testing.T, from, to *Store, names []string) []History {
	t.Helper()
	var hs []History
	err := from.Histories(names, func(h History) error {
		b, err := json.Marshal(h)
		if err != nil {
			return err
		}
		var sent History
		if err := json.Unmarshal(b, &sent); err != nil {
			return err
		}
		sent.Probes = h.Probes // sent apart, as observations
		hs = append(hs, sent)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := to.PutHistories(hs); err != nil {
		t.Fatal(err)
	}
	n, err := from.DeleteDomains(names)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(hs) {
		t.Fatalf("DeleteDomains removed %d domains; %d histories were sent", n, len(hs))
	}
	return hs
}

// A domain that changes shards arrives with its whole history, reading
// back as it read at the sender (its local id apart), and leaves nothing
// behind; the domains that stay, and those the receiver had, are as they
// were.
func TestShardHistoryMovesWholeAndLeavesNothing(t *testing.T) {
	a, b := openTest(t), openTest(t)
	names := shardFixture(t, a)
	// The receiver has domains and names of its own, so the moved ones get
	// other ids there, for domains and vantages alike.
	var own []string
	for i := range 10 {
		own = append(own, fmt.Sprintf("b%d.test", i))
	}
	if _, err := b.AddDomains(own, "local", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteProbes([]obs.Probe{shardProbe("b0.test", "10.0.0.1:53", t0, 1), shardProbe("b1.test", "127.0.0.1:5302", t0, 2)}); err != nil {
		t.Fatal(err)
	}
	before := map[string]shardState{}
	for _, name := range append(names, "b0.test", "b1.test") {
		s := a
		if name[0] == 'b' {
			s = b
		}
		st, ok := shardStateOf(t, s, name)
		if !ok {
			t.Fatalf("%s not stored", name)
		}
		before[name] = st
	}
	moved := []string{"d0.test", "d2.test", "d4.test", "d6.test", "d7.test"}
	stayed := []string{"d1.test", "d3.test", "d5.test"}
	oldIDs := map[string]uint32{}
	for _, name := range moved {
		oldIDs[name] = before[name].Domain.ID
	}
	probesBefore, _ := a.Stats()

	hs := moveShard(t, a, b, append([]string{"unknown.test", "d7.test"}, moved...))
	var got []string
	for _, h := range hs {
		got = append(got, h.Name)
	}
	if !slices.Equal(got, moved) {
		t.Fatalf("histories of %v; want %v, in name order, the unknown name skipped and none twice", got, moved)
	}

	for _, name := range moved {
		st, ok := shardStateOf(t, b, name)
		if !ok {
			t.Fatalf("%s not in the receiver", name)
		}
		want := before[name]
		if st.Domain.ID == want.Domain.ID {
			t.Errorf("%s kept its id %d though the receiver had given it away", name, st.Domain.ID)
		}
		st.Domain.ID, want.Domain.ID = 0, 0
		// Networks are not part of a history: the receiver's networks
		// job groups the domain anew with its other domains.
		want.Network = ""
		if diff := stateDiff(st, want); diff != "" {
			t.Errorf("%s in the receiver: %s", name, diff)
		}
		if st, ok := shardStateOf(t, a, name); ok || !reflect.DeepEqual(st, shardState{}) {
			t.Errorf("%s left in the sender: %+v", name, st)
		}
		if err := a.History(name, time.Time{}, time.Time{}, func(obs.Probe) error { return nil }); !errors.Is(err, ErrUnknownDomain) {
			t.Errorf("History(%s) in the sender: %v; want ErrUnknownDomain", name, err)
		}
	}
	// Nothing of them in the sender's lists, and no probe or next-due
	// value under their old ids.
	due, _ := a.Due(t0.Add(1000 * time.Hour))
	active, _ := a.Active()
	var verdicts, listed []string
	a.Verdicts(func(d string, _ []byte) error { verdicts = append(verdicts, d); return nil })
	a.Listed(func(d string, _ []byte) error { listed = append(listed, d); return nil })
	index, _ := a.NetworkIndex()
	for _, name := range moved {
		if slices.Contains(due, name) || slices.Contains(active, name) || slices.Contains(verdicts, name) ||
			slices.Contains(listed, name) || index[name] != "" {
			t.Errorf("%s still in the sender's lists: due %v, active %v, verdicts %v, listed %v, networks %v",
				name, due, active, verdicts, listed, index)
		}
	}
	a.db.View(func(tx *bolt.Tx) error {
		for name, id := range oldIDs {
			if k, _ := tx.Bucket(bucketProbes).Cursor().Seek(u32key(id)); k != nil && binary.BigEndian.Uint32(k) == id {
				t.Errorf("probes of %s left under id %d", name, id)
			}
			if at, dark, _ := nextDue(tx, id); !at.IsZero() || dark != 0 {
				t.Errorf("next due of %s left under id %d: %v, dark %d", name, id, at, dark)
			}
		}
		return nil
	})
	probesAfter, _ := a.Stats()
	if want := probesBefore.Probes * len(stayed) / len(names); probesAfter.Probes != want {
		t.Errorf("the sender holds %d probes; want the %d of the domains that stayed", probesAfter.Probes, want)
	}
	if probesAfter.Domains != len(stayed) {
		t.Errorf("the sender holds %d domains; want %d", probesAfter.Domains, len(stayed))
	}
	for _, name := range append(stayed, "b0.test", "b1.test") {
		s := a
		if name[0] == 'b' {
			s = b
		}
		if st, _ := shardStateOf(t, s, name); !reflect.DeepEqual(st, before[name]) {
			t.Errorf("%s changed: %s", name, stateDiff(st, before[name]))
		}
	}
	for _, s := range []*Store{a, b} {
		if err := s.Check(); err != nil {
			t.Errorf("%s: %v", s.Path(), err)
		}
	}
}

// shardDump is every key and value of every bucket, with the buckets'
// sequences: the whole database as its data.
func shardDump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			out[fmt.Sprintf("%s sequence", name)] = fmt.Sprint(b.Sequence())
			return b.ForEach(func(k, v []byte) error {
				out[fmt.Sprintf("%s %x", name, k)] = fmt.Sprintf("%x", v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Putting histories twice leaves the database byte for byte as putting
// them once; and a move retried into a store that already holds part of
// a domain's history (probes and log entries from an earlier attempt)
// stores each probe and entry once.
func TestShardPutHistoriesIsIdempotent(t *testing.T) {
	a, b := openTest(t), openTest(t)
	names := shardFixture(t, a)
	var hs []History
	if err := a.Histories(names, func(h History) error { hs = append(hs, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.PutHistories(hs); err != nil {
		t.Fatal(err)
	}
	once := shardDump(t, b)
	if err := b.PutHistories(hs); err != nil {
		t.Fatal(err)
	}
	if twice := shardDump(t, b); !reflect.DeepEqual(twice, once) {
		for k, v := range twice {
			if once[k] != v {
				t.Errorf("%s: %s after one put, %s after two", k, once[k], v)
			}
		}
		t.Fatalf("%d entries after one put, %d after two", len(once), len(twice))
	}

	c := openTest(t)
	var part []History
	for _, h := range hs {
		h.Probes = h.Probes[len(h.Probes)/3 : 2*len(h.Probes)/3]
		if len(h.Log) > 0 {
			h.Log = h.Log[len(h.Log)-1:]
		}
		part = append(part, h)
	}
	if err := c.PutHistories(part); err != nil {
		t.Fatal(err)
	}
	if err := c.PutHistories(hs); err != nil {
		t.Fatal(err)
	}
	sa, _ := a.Stats()
	if sc, _ := c.Stats(); sc.Probes != sa.Probes || sc.Domains != sa.Domains {
		t.Errorf("after a retried move: %d probes of %d domains; the sender has %d of %d", sc.Probes, sc.Domains, sa.Probes, sa.Domains)
	}
	for _, name := range names {
		want, _ := shardStateOf(t, a, name)
		got, _ := shardStateOf(t, c, name)
		got.Domain.ID, want.Domain.ID, want.Network = 0, 0, ""
		if diff := stateDiff(got, want); diff != "" {
			t.Errorf("%s after a retried move: %s", name, diff)
		}
	}
}

// A domain the receiver already has is merged: sources united, the
// earliest first-seen time kept, probes and log entries added, and what the
// owner decides (next due, dark count, activity, verdict, listing,
// delisting, published mark) taken from the history, also when the history
// has none.
func TestShardPutHistoriesMergesAKnownDomain(t *testing.T) {
	b := openTest(t)
	if _, err := b.AddDomains([]string{"m.test"}, "local", t0.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	own := shardProbe("m.test", "10.9.9.9:53", t0.Add(-time.Hour), 9)
	if _, err := b.WriteProbes([]obs.Probe{own}); err != nil {
		t.Fatal(err)
	}
	err := b.PutVerdicts([]VerdictRecord{{Domain: "m.test", Full: []byte(`{"v":"old"}`), Listed: []byte(`{"old":1}`),
		Event: []byte(`{"event":"listed"}`), EventTime: t0.Add(-time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RecordPublish(t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetMeasured([]Measured{{Domain: "m.test", At: t0.Add(time.Hour), Dark: 4}}); err != nil {
		t.Fatal(err)
	}

	sent := shardProbe("m.test", "127.0.0.1:5301", t0, 1)
	h := History{Name: "m.test", Sources: []string{"feed"}, FirstSeen: t0, NextDue: t0.Add(2 * time.Hour),
		Dark: 1, Active: false, Probes: []obs.Probe{sent}, Verdict: json.RawMessage(`{"v":"new"}`),
		Delisted: &Delisting{Time: t0, Reason: "by hand"},
		Log:      []LogEntry{{At: t0, Event: json.RawMessage(`{"event":"delisted"}`)}}}
	if err := b.PutHistories([]History{h}); err != nil {
		t.Fatal(err)
	}
	st, _ := shardStateOf(t, b, "m.test")
	wantDomain := Domain{Name: "m.test", ID: st.Domain.ID, Sources: []string{"feed", "local"}, FirstSeen: t0.Add(-24 * time.Hour),
		NextDue: t0.Add(2 * time.Hour), Dark: 1, Active: false}
	if !reflect.DeepEqual(st.Domain, wantDomain) {
		t.Errorf("domain %+v; want %+v", st.Domain, wantDomain)
	}
	if len(st.Probes) != 2 || !reflect.DeepEqual(st.Probes[0], own) || !reflect.DeepEqual(st.Probes[1], sent) {
		t.Errorf("probes %+v; want the receiver's and the sender's", st.Probes)
	}
	if string(st.Verdict) != `{"v":"new"}` || st.Listed != nil || st.Published ||
		!reflect.DeepEqual(st.Delisted, h.Delisted) || len(st.Log) != 2 {
		t.Errorf("listing state %+v; want the sender's, with both log entries", st)
	}
	// The history's first-seen time is kept when it is the earlier.
	h.FirstSeen = t0.Add(-48 * time.Hour)
	if err := b.PutHistories([]History{h}); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := b.Domain("m.test"); !d.FirstSeen.Equal(h.FirstSeen) {
		t.Errorf("first seen %v; want the history's earlier %v", d.FirstSeen, h.FirstSeen)
	}
	// A history without a first-seen time keeps the stored one.
	earlier := h.FirstSeen
	h.FirstSeen = time.Time{}
	if err := b.PutHistories([]History{h}); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := b.Domain("m.test"); !d.FirstSeen.Equal(earlier) {
		t.Errorf("first seen %v after a history without one; want the stored %v", d.FirstSeen, earlier)
	}
}

// A history that would leave the database inconsistent is refused, and
// with it the whole batch: nothing is stored.
func TestShardPutHistoriesAllOrNone(t *testing.T) {
	b := openTest(t)
	good := History{Name: "good.test", FirstSeen: t0, Active: true, Probes: []obs.Probe{shardProbe("good.test", "127.0.0.1:53", t0, 1)}}
	for _, bad := range []History{
		{Name: "listed.test", FirstSeen: t0, Listed: json.RawMessage(`{}`)},
		{Name: "other.test", FirstSeen: t0, Probes: []obs.Probe{shardProbe("good.test", "127.0.0.1:53", t0.Add(time.Minute), 2)}},
		{Name: "", FirstSeen: t0},
		{Name: "log.test", FirstSeen: t0, Log: []LogEntry{{At: t0}}},
	} {
		if err := b.PutHistories([]History{good, bad}); err == nil {
			t.Errorf("history %+v stored", bad)
		}
	}
	if st, _ := b.Stats(); st.Domains != 0 || st.Probes != 0 || st.Names != 0 {
		t.Errorf("a refused batch stored %+v", st)
	}
}

// Deleting names the store does not know (or no longer knows) changes
// nothing and is no error.
func TestShardDeleteUnknownDomainsRemovesNothing(t *testing.T) {
	a := openTest(t)
	shardFixture(t, a)
	before := shardDump(t, a)
	for _, names := range [][]string{nil, {"unknown.test"}, {"d0.test\x00", "d", "d0.test.", ""}} {
		if n, err := a.DeleteDomains(names); n != 0 || err != nil {
			t.Errorf("DeleteDomains(%q) = %d, %v", names, n, err)
		}
	}
	if after := shardDump(t, a); !reflect.DeepEqual(after, before) {
		t.Error("deleting unknown names changed the database")
	}
	// A name given twice is one domain; deleted again, it is unknown.
	if n, err := a.DeleteDomains([]string{"d1.test", "d1.test"}); n != 1 || err != nil {
		t.Errorf("DeleteDomains(d1, d1) = %d, %v; want 1", n, err)
	}
	if n, err := a.DeleteDomains([]string{"d1.test"}); n != 0 || err != nil {
		t.Errorf("DeleteDomains(d1) again = %d, %v; want 0", n, err)
	}
	// Every domain of a next-due chunk gone, the chunk goes too.
	names := []string{}
	a.Domains(func(d Domain) error { names = append(names, d.Name); return nil })
	if n, err := a.DeleteDomains(names); n != len(names) || err != nil {
		t.Errorf("DeleteDomains(all) = %d, %v; want %d", n, err, len(names))
	}
	for k := range shardDump(t, a) {
		bucket, key, _ := strings.Cut(k, " ")
		switch bucket {
		case "domains", "domain_ids", "probes", "due", "verdicts", "listed", "delisted", "published", "listing_log", "network_of":
			if key != "sequence" {
				t.Errorf("left after every domain was deleted: %s", k)
			}
		}
	}
}

// The writer forgets the id of a deleted domain: its probes are refused
// as those of an unknown domain rather than stored under an id nothing
// names, and the domain added again gets a new id and an empty history.
func TestShardDeletedDomainIsForgottenByTheWriter(t *testing.T) {
	a := openTest(t)
	if _, err := a.AddDomains([]string{"x.test", "y.test"}, "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteProbes([]obs.Probe{shardProbe("x.test", "127.0.0.1:53", t0, 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Due(t0); err != nil { // caches every active domain's id
		t.Fatal(err)
	}
	old, _, _ := a.Domain("x.test")
	if n, err := a.DeleteDomains([]string{"x.test"}); n != 1 || err != nil {
		t.Fatalf("DeleteDomains = %d, %v", n, err)
	}
	if _, err := a.WriteProbes([]obs.Probe{shardProbe("x.test", "127.0.0.1:53", t0.Add(time.Hour), 2)}); !errors.Is(err, ErrUnknownDomain) {
		t.Fatalf("a probe of the deleted domain: %v; want ErrUnknownDomain", err)
	}
	if err := a.SetMeasured([]Measured{{Domain: "x.test", At: t0.Add(time.Hour), Dark: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddDomains([]string{"x.test"}, "", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	again, _, _ := a.Domain("x.test")
	if again.ID == old.ID || !again.NextDue.IsZero() || again.Dark != 0 {
		t.Fatalf("added again: %+v; was %+v", again, old)
	}
	p := shardProbe("x.test", "127.0.0.1:53", t0.Add(2*time.Hour), 3)
	if _, err := a.WriteProbes([]obs.Probe{p}); err != nil {
		t.Fatal(err)
	}
	var got []obs.Probe
	a.History("x.test", time.Time{}, time.Time{}, func(p obs.Probe) error { got = append(got, p); return nil })
	if len(got) != 1 || !reflect.DeepEqual(got[0], p) {
		t.Fatalf("history after adding it again: %+v", got)
	}
}

// Histories reads many domains in several read transactions, still in
// name order and each once, and stops at fn's first error.
func TestShardHistoriesInBatches(t *testing.T) {
	a := openTest(t)
	var names []string
	var ps []obs.Probe
	for i := range historyBatchDomains + 50 {
		name := fmt.Sprintf("n%04d.test", i)
		names = append(names, name)
		ps = append(ps, probe(name, "127.0.0.1:53", t0, "192.0.2.1"))
	}
	if _, err := a.AddDomains(names, "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
	asked := slices.Clone(names)
	slices.Reverse(asked)
	asked = append(asked, names[:10]...)
	var got []string
	err := a.Histories(asked, func(h History) error {
		if len(h.Probes) != 1 {
			t.Errorf("%s: %d probes", h.Name, len(h.Probes))
		}
		got = append(got, h.Name)
		return nil
	})
	if err != nil || !slices.Equal(got, names) {
		t.Fatalf("Histories: %d names, %v; want the %d in order", len(got), err, len(names))
	}
	stop := errors.New("stop")
	n := 0
	err = a.Histories(names, func(History) error {
		if n++; n == historyBatchDomains+2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != historyBatchDomains+2 {
		t.Fatalf("Histories went on to %d after fn failed, and said %v", n, err)
	}
}

// Readers that cache ids (Due, Active) running while domains are deleted
// and added again never leave the writer an id that names nothing: every
// probe is stored under the domain's id of the moment, or refused.
func TestShardDeleteWhileReadersCacheIDs(t *testing.T) {
	a := openTest(t)
	names := []string{"r0.test", "r1.test", "r2.test"}
	done := make(chan struct{})
	readerDone := make(chan error)
	go func() {
		for {
			select {
			case <-done:
				readerDone <- nil
				return
			default:
			}
			if _, err := a.Active(); err != nil {
				readerDone <- err
				return
			}
		}
	}()
	for i := range 200 {
		if _, err := a.AddDomains(names, "", t0); err != nil {
			t.Fatal(err)
		}
		p := probe(names[i%3], "127.0.0.1:53", t0.Add(time.Duration(i)*time.Second), "192.0.2.1")
		if _, err := a.WriteProbes([]obs.Probe{p}); err != nil && !errors.Is(err, ErrUnknownDomain) {
			t.Fatal(err)
		}
		if _, err := a.DeleteDomains(names[i%3 : i%3+1]); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
}

// A zone the classifier judged from the names under it has a verdict,
// listing and log under its own name and no domain record: it moves with
// its names, and nothing of it stays behind.
func TestShardZoneVerdictMovesWithItsNames(t *testing.T) {
	a, b := openTest(t), openTest(t)
	if _, err := a.AddDomains([]string{"www.zone.test"}, "seed", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteProbes([]obs.Probe{shardProbe("www.zone.test", "127.0.0.1:53", t0, 1)}); err != nil {
		t.Fatal(err)
	}
	full := []byte(`{"domain":"zone.test","verdict":"single-flux"}`)
	if err := a.PutVerdicts([]VerdictRecord{{Domain: "zone.test", Full: full, Listed: full, Event: []byte(`{"event":"listed"}`), EventTime: t0}}); err != nil {
		t.Fatal(err)
	}
	var hs []History
	if err := a.Histories([]string{"www.zone.test", "zone.test", "nothing.test"}, func(h History) error { hs = append(hs, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].Zone || !hs[1].Zone || hs[1].Listed == nil || len(hs[1].Log) != 1 {
		t.Fatalf("histories %+v", hs)
	}
	if err := b.PutHistories(hs); err != nil {
		t.Fatal(err)
	}
	if n, err := a.DeleteDomains([]string{"www.zone.test", "zone.test"}); n != 2 || err != nil {
		t.Fatalf("DeleteDomains = %d, %v; want 2", n, err)
	}
	if v, _ := a.Verdict("zone.test"); v != nil {
		t.Error("the zone's verdict stayed behind")
	}
	listed := 0
	a.Listed(func(string, []byte) error { listed++; return nil })
	if listed != 0 {
		t.Error("the zone's listing stayed behind")
	}
	if v, _ := b.Verdict("zone.test"); !bytes.Equal(v, full) {
		t.Errorf("the zone's verdict moved as %q", v)
	}
	if _, ok, _ := b.Domain("zone.test"); ok {
		t.Error("the zone became a seeded domain")
	}
	for _, s := range []*Store{a, b} {
		if err := s.Check(); err != nil {
			t.Error(err)
		}
	}
	// A zone's history with probes is refused.
	if err := b.PutHistories([]History{{Name: "z.test", Zone: true, Probes: hs[0].Probes}}); err == nil {
		t.Error("a zone with probes was stored")
	}
	// A name with nothing but a listing log is a zone too: handed over
	// and deleted, its log does not stay behind.
	err := a.db.Update(func(tx *bolt.Tx) error { return putLog(tx, "log.test", t0, []byte(`{"event":"delisted"}`)) })
	if err != nil {
		t.Fatal(err)
	}
	hs = hs[:0]
	if err := a.Histories([]string{"log.test"}, func(h History) error { hs = append(hs, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || !hs[0].Zone || len(hs[0].Log) != 1 {
		t.Fatalf("history of a name with only a log: %+v", hs)
	}
	if n, err := a.DeleteDomains([]string{"log.test"}); n != 1 || err != nil {
		t.Fatalf("DeleteDomains of a name with only a log = %d, %v; want 1", n, err)
	}
	entries := 0
	a.ListingLog("log.test", func(time.Time, []byte) error { entries++; return nil })
	if entries != 0 {
		t.Errorf("%d log entries stayed behind", entries)
	}
}

// A history that passes the checks but fails inside the transaction (an
// answer that is not an address) stores nothing of its batch, and leaves
// no interned name behind that a later write would trust.
func TestShardPutHistoriesFailingInsideStoresNothing(t *testing.T) {
	b := openTest(t)
	good := History{Name: "good.test", FirstSeen: t0, Active: true, Probes: []obs.Probe{shardProbe("good.test", "127.0.0.1:53", t0, 1)}}
	broken := shardProbe("bad.test", "127.0.0.1:53", t0, 2)
	broken.Observations[0].Answer = append(broken.Observations[0].Answer, obs.Record{Name: "bad.test", Type: dns.TypeA, TTL: 60, Data: "not-an-ip"})
	bad := History{Name: "bad.test", FirstSeen: t0, Active: true, Probes: []obs.Probe{broken}}
	if err := b.PutHistories([]History{good, bad}); err == nil {
		t.Fatal("a history with an unstorable answer was stored")
	}
	if st, _ := b.Stats(); st.Domains != 0 || st.Probes != 0 {
		t.Errorf("a failed batch stored %+v", st)
	}
	if err := b.PutHistories([]History{good}); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(); err != nil {
		t.Errorf("after a failed batch and a good one: %v", err)
	}
}
