package cluster

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/storage"
)

var feedT0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// feedJS connects to a new embedded NATS server.
func feedJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	return jsClient(t, startNATS(t).ClientURL())
}

// listedVerdict is a listed flux verdict of domain, classified at at,
// whose listing expires at expires.
func listedVerdict(domain string, score float64, at, expires time.Time) classify.Verdict {
	return classify.Verdict{Domain: domain, Verdict: classify.SingleFlux, Score: score, Confidence: 0.9,
		Evidence: "wide flux", ClassifiedAt: at, Agents: []string{"192.0.2.1", "198.51.100.7"},
		Features: classify.Features{Addresses: 40, Networks: 12, FirstSeen: at.Add(-time.Hour), LastSeen: at},
		Listing:  &classify.Listing{FirstListed: at, LastConfirmed: at, ExpiresAt: expires}}
}

func entriesOf(vs ...classify.Verdict) []FeedEntry {
	es := make([]FeedEntry, len(vs))
	for i, v := range vs {
		es[i] = FeedEntry{Listed: v}
	}
	return es
}

// feedNames returns the names of a feed, in its order.
func feedNames(f Feed) []string {
	var ns []string
	for _, e := range f {
		ns = append(ns, e.Domain())
	}
	return ns
}

func putLists(t *testing.T, js jetstream.JetStream, lists ...ShardList) {
	t.Helper()
	for _, l := range lists {
		if err := PutShardList(context.Background(), js, "", l); err != nil {
			t.Fatal(err)
		}
	}
}

func loadLists(t *testing.T, js jetstream.JetStream) []ShardList {
	t.Helper()
	lists, err := LoadShardLists(context.Background(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	return lists
}

// Three shards publish; the lists come back as they were put, by shard,
// and merge into one feed in name order. m.test moved from shard 0 to
// shard 2: it appears once, as shard 2, which published last, lists it.
func TestShardListsMergeThreeShards(t *testing.T) {
	js := feedJS(t)
	week := feedT0.Add(7 * 24 * time.Hour)
	c := listedVerdict("c.test", 0.8, feedT0.Add(-48*time.Hour), week)
	cLatest := classify.Verdict{Domain: "c.test", Verdict: classify.Benign, Score: 0.1, Confidence: 0.7,
		ClassifiedAt: feedT0.Add(-time.Hour), Listing: c.Listing}
	lists := []ShardList{
		{Shard: 0, Shards: 3, Published: feedT0.Add(-2 * time.Hour),
			Entries: entriesOf(listedVerdict("a.test", 0.9, feedT0, week), listedVerdict("m.test", 0.5, feedT0, week))},
		{Shard: 1, Shards: 3, Published: feedT0.Add(-time.Hour),
			Entries: append(entriesOf(listedVerdict("b.test", 0.9, feedT0, week)), FeedEntry{Listed: c, Latest: &cLatest})},
		{Shard: 2, Shards: 3, Published: feedT0.Add(-30 * time.Minute),
			Entries: entriesOf(listedVerdict("m.test", 0.99, feedT0, week), listedVerdict("z.test", 0.9, feedT0, week))},
	}
	putLists(t, js, lists[2], lists[0], lists[1])

	got := loadLists(t, js)
	if !reflect.DeepEqual(got, lists) {
		t.Fatalf("loaded lists differ from those put:\n got %+v\nwant %+v", got, lists)
	}
	feed := MergeLists(got, feedT0)
	if want := []string{"a.test", "b.test", "c.test", "m.test", "z.test"}; !slices.Equal(feedNames(feed), want) {
		t.Fatalf("merged %v, want %v", feedNames(feed), want)
	}
	if m := feed[3].Listed; m.Score != 0.99 {
		t.Errorf("m.test has score %v, the one of the list published first; want 0.99 of shard 2's", m.Score)
	}
	// Published at the same time, the higher shard's list wins, in
	// whichever order the lists come.
	tied := []ShardList{lists[0], lists[2]}
	tied[1].Published = tied[0].Published
	for _, order := range [][]ShardList{tied, {tied[1], tied[0]}} {
		if m := MergeLists(order, feedT0)[1].Listed; m.Domain != "m.test" || m.Score != 0.99 {
			t.Errorf("lists published at once, shards %d then %d: %s with score %v; want m.test with shard 2's 0.99",
				order[0].Shard, order[1].Shard, m.Domain, m.Score)
		}
	}

	// The block lists read the verdict c.test is listed on, jsonl and csv
	// its latest.
	verdicts := func(listedOnly bool) map[string]string {
		m := map[string]string{}
		feed.Each(listedOnly, func(v classify.Verdict) error { m[v.Domain] = v.Verdict; return nil })
		return m
	}
	if v := verdicts(true)["c.test"]; v != classify.SingleFlux {
		t.Errorf("listed record of c.test is %s, want %s", v, classify.SingleFlux)
	}
	if v := verdicts(false)["c.test"]; v != classify.Benign {
		t.Errorf("latest verdict of c.test is %s, want %s", v, classify.Benign)
	}
}

// Shard 0 went down six days ago. Its entries stay in the feed until their
// listings expire, one by one, and the entries of the shard that is up
// stay whatever happens to shard 0's. A name whose listing expired in the
// list published last is gone, though an older list still holds it.
func TestShardDownKeepsItsEntriesUntilTheyExpire(t *testing.T) {
	js := feedJS(t)
	down := ShardList{Shard: 0, Shards: 2, Published: feedT0.Add(-6 * 24 * time.Hour), Entries: entriesOf(
		listedVerdict("a.test", 0.9, feedT0.Add(-6*24*time.Hour), feedT0.Add(24*time.Hour)),
		listedVerdict("b.test", 0.9, feedT0.Add(-6*24*time.Hour), feedT0.Add(2*time.Hour)),
		listedVerdict("d.test", 0.9, feedT0.Add(-6*24*time.Hour), feedT0.Add(24*time.Hour)),
	)}
	up := ShardList{Shard: 1, Shards: 2, Published: feedT0, Entries: entriesOf(
		listedVerdict("c.test", 0.9, feedT0, feedT0.Add(7*24*time.Hour)),
		listedVerdict("d.test", 0.9, feedT0.Add(-5*24*time.Hour), feedT0.Add(time.Hour)),
	)}
	putLists(t, js, down, up)
	lists := loadLists(t, js)
	for _, c := range []struct {
		at   time.Duration
		want []string
	}{
		{0, []string{"a.test", "b.test", "c.test", "d.test"}},
		{90 * time.Minute, []string{"a.test", "b.test", "c.test"}},
		{3 * time.Hour, []string{"a.test", "c.test"}},
		{24 * time.Hour, []string{"c.test"}},
	} {
		if got := feedNames(MergeLists(lists, feedT0.Add(c.at))); !slices.Equal(got, c.want) {
			t.Errorf("at +%v merged %v, want %v", c.at, got, c.want)
		}
	}
}

// A shard's next list replaces its last: a domain it no longer lists is
// gone from the feed.
func TestShardListReplacedByItsNextPut(t *testing.T) {
	js := feedJS(t)
	week := feedT0.Add(7 * 24 * time.Hour)
	first := ShardList{Shard: 0, Shards: 1, Published: feedT0,
		Entries: entriesOf(listedVerdict("a.test", 0.9, feedT0, week), listedVerdict("b.test", 0.9, feedT0, week))}
	next := ShardList{Shard: 0, Shards: 1, Published: feedT0.Add(10 * time.Minute),
		Entries: entriesOf(listedVerdict("a.test", 0.9, feedT0, week))}
	putLists(t, js, first, next)
	lists := loadLists(t, js)
	if len(lists) != 1 || !lists[0].Published.Equal(next.Published) {
		t.Fatalf("loaded %d lists, want the one put last", len(lists))
	}
	if got := feedNames(MergeLists(lists, feedT0)); !slices.Equal(got, []string{"a.test"}) {
		t.Errorf("merged %v, want [a.test]", got)
	}
}

// The watch reports the lists already published, then every put, by
// shard, and ends without an error when its context does.
func TestShardListWatchSeesPuts(t *testing.T) {
	js := feedJS(t)
	week := feedT0.Add(7 * 24 * time.Hour)
	list := func(shard int) ShardList {
		return ShardList{Shard: shard, Shards: 3, Published: feedT0,
			Entries: entriesOf(listedVerdict(fmt.Sprintf("s%d.test", shard), 0.9, feedT0, week))}
	}
	putLists(t, js, list(0))
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan int, 10)
	done := make(chan error, 1)
	go func() { done <- WatchShardLists(ctx, js, "", func(shard int) { seen <- shard }) }()
	next := func(what string) int {
		t.Helper()
		select {
		case s := <-seen:
			return s
		case err := <-done:
			t.Fatalf("watch ended waiting for %s: %v", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no call for %s", what)
		}
		return -1
	}
	if s := next("the list already there"); s != 0 {
		t.Errorf("first call for shard %d, want 0", s)
	}
	putLists(t, js, list(2))
	if s := next("the put of shard 2"); s != 2 {
		t.Errorf("call for shard %d after shard 2 published", s)
	}
	putLists(t, js, list(2))
	if s := next("shard 2 publishing again"); s != 2 {
		t.Errorf("call for shard %d after shard 2 published again", s)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("watch ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end with its context")
	}
	if len(seen) > 0 {
		t.Errorf("%d calls more than the puts", len(seen))
	}
}

// A list the merge could not trust is refused before anything is
// published, and a list in a format this version does not know fails the
// load rather than being merged.
func TestShardListRefusedWhenUnfit(t *testing.T) {
	js := feedJS(t)
	week := feedT0.Add(7 * 24 * time.Hour)
	a, b := listedVerdict("a.test", 0.9, feedT0, week), listedVerdict("b.test", 0.9, feedT0, week)
	unlisted := b
	unlisted.Listing = nil
	for _, c := range []struct {
		name string
		l    ShardList
		want string
	}{
		{"shard out of range", ShardList{Shard: 3, Shards: 3, Published: feedT0}, "not a shard"},
		{"no shards", ShardList{Shard: 0, Shards: 0, Published: feedT0}, "not a shard"},
		{"no publish time", ShardList{Shard: 0, Shards: 1}, "no publish time"},
		{"out of order", ShardList{Shard: 0, Shards: 1, Published: feedT0, Entries: entriesOf(b, a)}, "name order"},
		{"twice", ShardList{Shard: 0, Shards: 1, Published: feedT0, Entries: entriesOf(a, a)}, "name order"},
		{"not listed", ShardList{Shard: 0, Shards: 1, Published: feedT0, Entries: entriesOf(a, unlisted)}, "not listed"},
	} {
		err := PutShardList(context.Background(), js, "", c.l)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: put returned %v, want an error saying %q", c.name, err, c.want)
		}
	}
	if lists := loadLists(t, js); len(lists) != 0 {
		t.Fatalf("refused lists were published: %+v", lists)
	}

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	json.NewEncoder(zw).Encode(feedHeader{Version: feedVersion + 1, Shard: 0, Shards: 1, Published: feedT0})
	zw.Close()
	s, err := feedObjects(context.Background(), js, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBytes(context.Background(), shardObject(0), buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadShardLists(context.Background(), js, ""); err == nil || !strings.Contains(err.Error(), "format version") {
		t.Errorf("a list of format version %d loaded with %v", feedVersion+1, err)
	}
}

// ReadShardList takes a store's listed domains with the verdict each is
// listed on and, where a later one was made, the latest verdict; domains
// that are not listed stay out.
func TestShardListReadFromStore(t *testing.T) {
	store := openStore(t, "shard.db")
	week := feedT0.Add(7 * 24 * time.Hour)
	a := listedVerdict("a.test", 0.9, feedT0, week)
	b := listedVerdict("b.test", 0.8, feedT0.Add(-24*time.Hour), week)
	bLatest := classify.Verdict{Domain: "b.test", Verdict: classify.Benign, Score: 0.1, ClassifiedAt: feedT0, Listing: b.Listing}
	c := classify.Verdict{Domain: "c.test", Verdict: classify.Benign, Score: 0.1, ClassifiedAt: feedT0}
	// A later run of the same kind, and the same run of another kind:
	// each is a later verdict.
	d := listedVerdict("d.test", 0.8, feedT0.Add(-24*time.Hour), week)
	dLatest := d
	dLatest.ClassifiedAt, dLatest.Score = feedT0, 0.7
	e := listedVerdict("e.test", 0.8, feedT0.Add(-24*time.Hour), week)
	eLatest := e
	eLatest.Verdict = classify.DoubleFlux
	mustJSON := func(v classify.Verdict) []byte {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	err := store.PutVerdicts([]storage.VerdictRecord{
		{Domain: "a.test", Full: mustJSON(a), Listed: mustJSON(a)},
		{Domain: "b.test", Full: mustJSON(bLatest), Listed: mustJSON(b)},
		{Domain: "c.test", Full: mustJSON(c)},
		{Domain: "d.test", Full: mustJSON(dLatest), Listed: mustJSON(d)},
		{Domain: "e.test", Full: mustJSON(eLatest), Listed: mustJSON(e)},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ReadShardList(store, 1, 2, feedT0)
	if err != nil {
		t.Fatal(err)
	}
	want := ShardList{Shard: 1, Shards: 2, Published: feedT0, Entries: []FeedEntry{{Listed: a}, {Listed: b, Latest: &bLatest},
		{Listed: d, Latest: &dLatest}, {Listed: e, Latest: &eLatest}}}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("read\n %+v\nwant\n %+v", l, want)
	}
}

// benchEntries makes n listed entries that look like real ones: a flux
// verdict with 90 to 280 agents (the range of the demo's flux domains),
// a quarter double flux with name servers, and one in five with a later
// verdict that found no flux.
func benchEntries(n int) []FeedEntry {
	rng := rand.New(rand.NewPCG(1, 2))
	addr := func() string {
		return fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(222), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
	}
	es := make([]FeedEntry, n)
	for i := range es {
		at := feedT0.Add(-time.Duration(rng.IntN(72)) * time.Hour)
		v := listedVerdict(fmt.Sprintf("host-%06d.example-%d.test", i, rng.IntN(1000)), 0.5+rng.Float64()/2, at, at.Add(7*24*time.Hour))
		v.Evidence = strings.Repeat("wide flux: 254 addresses in 24 ASNs, 17 countries, 46 /16s ", 7)
		v.Agents = make([]string, 90+rng.IntN(190))
		for j := range v.Agents {
			v.Agents[j] = addr()
		}
		slices.Sort(v.Agents)
		for j := range 4 {
			v.Features.PerVantage = append(v.Features.PerVantage, classify.VantageFeatures{Vantage: fmt.Sprintf("eu-%d/192.0.2.%d:53", j, j), Rounds: 8, Addresses: rng.IntN(90), SetChanges: 7})
		}
		if i%4 == 0 {
			v.Verdict = classify.DoubleFlux
			v.NameServers = []string{"ns1." + v.Domain, "ns2." + v.Domain, "ns3." + v.Domain, "ns4." + v.Domain}
			v.NSAgents = make([]string, 40+rng.IntN(40))
			for j := range v.NSAgents {
				v.NSAgents[j] = addr()
			}
			slices.Sort(v.NSAgents)
		}
		es[i].Listed = v
		if i%5 == 0 {
			latest := v
			latest.Verdict, latest.Agents, latest.NameServers, latest.NSAgents = classify.Benign, nil, nil, nil
			latest.ClassifiedAt = feedT0
			es[i].Latest = &latest
		}
	}
	slices.SortFunc(es, func(a, b FeedEntry) int { return strings.Compare(a.Domain(), b.Domain()) })
	return es
}

// BenchmarkShardListPutLoad puts a shard's list of 10,000 entries and
// loads it back: object-B/entry is what one listed domain costs in the
// object store, json-B/entry the same uncompressed.
func BenchmarkShardListPutLoad(b *testing.B) {
	js := feedJS(b)
	l := ShardList{Shard: 0, Shards: 1, Published: feedT0, Entries: benchEntries(10000)}
	var raw countWriter
	for _, e := range l.Entries {
		json.NewEncoder(&raw).Encode(e)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := PutShardList(ctx, js, "", l); err != nil {
			b.Fatal(err)
		}
		lists, err := LoadShardLists(ctx, js, "")
		if err != nil || len(lists) != 1 || len(lists[0].Entries) != len(l.Entries) {
			b.Fatalf("loaded %d lists, %v", len(lists), err)
		}
	}
	b.StopTimer()
	s, err := feedObjects(ctx, js, "", false)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.GetInfo(ctx, shardObject(0))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(info.Size)/float64(len(l.Entries)), "object-B/entry")
	b.ReportMetric(float64(raw)/float64(len(l.Entries)), "json-B/entry")
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
