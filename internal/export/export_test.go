package export_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/internal/export"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/storage"
)

const zone = "fluxwatch.rpz"

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// openStore opens a database in a temporary directory, closed when the
// test ends.
func openStore(t *testing.T) *storage.Store {
	t.Helper()
	s, err := storage.Open(filepath.Join(t.TempDir(), "fw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// flux is a listed single-flux verdict of domain, classified at at.
func flux(domain string, at time.Time) classify.Verdict {
	return classify.Verdict{Domain: domain, Verdict: classify.SingleFlux, Score: 0.9, Confidence: 0.9, ClassifiedAt: at,
		Listing: &classify.Listing{FirstListed: at, LastConfirmed: at, ExpiresAt: at.Add(classify.DefaultExpiry)}}
}

// benignLater is a later verdict of a listed domain that found no flux:
// the listing runs on.
func benignLater(listed classify.Verdict) classify.Verdict {
	return classify.Verdict{Domain: listed.Domain, Verdict: classify.Benign, Score: 0.1, Confidence: 0.8,
		ClassifiedAt: listed.ClassifiedAt.Add(time.Hour), Listing: listed.Listing}
}

// readRPZ parses an RPZ file: its SOA serials, one per SOA record, and
// the names it blocks (the owners of its qname triggers, relative to the
// zone, without the wildcards).
func readRPZ(t *testing.T, path string) (serials []uint32, blocked []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, zone+".", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch rr := rr.(type) {
		case *dns.SOA:
			serials = append(serials, rr.Serial)
		case *dns.CNAME:
			name := strings.TrimSuffix(rr.Hdr.Name, "."+zone+".")
			if !strings.HasPrefix(name, "*.") {
				blocked = append(blocked, name)
			}
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return serials, blocked
}

// jsonlVerdicts reads a jsonl export: each domain's verdict.
func jsonlVerdicts(t *testing.T, b []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v classify.Verdict
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		m[v.Domain] = v.Verdict
	}
	return m
}

// The publisher of three shards writes one RPZ from their merged lists:
// one SOA, its own database's serial, every merged name and nothing of its
// own database's list; jsonl from the same feed has each domain's latest
// verdict.
func TestShardFeedWriteFrom(t *testing.T) {
	store := openStore(t)
	own := flux("own.test", t0)
	ownJSON, _ := json.Marshal(own)
	if err := store.PutVerdicts([]storage.VerdictRecord{{Domain: own.Domain, Full: ownJSON, Listed: ownJSON}}); err != nil {
		t.Fatal(err)
	}
	c := flux("c.test", t0.Add(-time.Hour))
	cLatest := benignLater(c)
	expired := flux("x.test", t0.Add(-8*24*time.Hour))
	lists := []cluster.ShardList{
		{Shard: 0, Shards: 3, Published: t0.Add(-time.Hour), Entries: []cluster.FeedEntry{{Listed: flux("a.test", t0)}, {Listed: flux("m.test", t0)}}},
		{Shard: 1, Shards: 3, Published: t0, Entries: []cluster.FeedEntry{{Listed: flux("b.test", t0)}, {Listed: c, Latest: &cLatest}, {Listed: expired}}},
		{Shard: 2, Shards: 3, Published: t0, Entries: []cluster.FeedEntry{{Listed: flux("m.test", t0)}}},
	}
	merged := cluster.MergeLists(lists, t0)
	want := []string{"a.test", "b.test", "c.test", "m.test"}

	out := filepath.Join(t.TempDir(), "feed.rpz")
	var last uint32
	for range 2 {
		n, err := export.WriteFrom(store, "rpz", out, results.Options{Zone: zone}, nil, nil, merged.Each)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(want) {
			t.Errorf("WriteFrom counted %d listed domains, want %d", n, len(want))
		}
		serials, blocked := readRPZ(t, out)
		if len(serials) != 1 {
			t.Fatalf("%d SOA records, want 1", len(serials))
		}
		if serials[0] <= last {
			t.Errorf("serial %d after %d", serials[0], last)
		}
		last = serials[0]
		if !slices.Equal(blocked, want) {
			t.Errorf("the zone blocks %v, want %v", blocked, want)
		}
	}
	next, err := store.NextSerial(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if next != last+1 {
		t.Errorf("the publisher's database gives serial %d after the zone's %d: the zone's was not its own", next, last)
	}
	zoneText, _ := os.ReadFile(out)
	if !strings.Contains(string(zoneText), "*.c.test CNAME . ; single-flux") {
		t.Errorf("c.test is not blocked as the flux verdict it is listed on:\n%s", zoneText)
	}

	var jsonl bytes.Buffer
	if _, err := export.WriteFrom(store, "jsonl", "-", results.Options{}, &jsonl, nil, merged.Each); err != nil {
		t.Fatal(err)
	}
	verdicts := jsonlVerdicts(t, jsonl.Bytes())
	if len(verdicts) != len(want) || verdicts["c.test"] != classify.Benign || verdicts["a.test"] != classify.SingleFlux {
		t.Errorf("jsonl of the feed has %v; want the latest verdict of each of %v", verdicts, want)
	}
}

// Write reads the store as it did before WriteFrom: block lists from the
// listed records, jsonl from the latest verdicts (every one with All), the
// RPZ serial above that of the file it replaces, the listed domains
// counted.
func TestShardFeedLeavesWriteFromStoreAsBefore(t *testing.T) {
	store := openStore(t)
	a := flux("a.test", t0)
	b := flux("b.test", t0.Add(-time.Hour))
	bLatest := benignLater(b)
	c := classify.Verdict{Domain: "c.test", Verdict: classify.Benign, Score: 0.1, ClassifiedAt: t0}
	j := func(v classify.Verdict) []byte { out, _ := json.Marshal(v); return out }
	err := store.PutVerdicts([]storage.VerdictRecord{
		{Domain: "a.test", Full: j(a), Listed: j(a)},
		{Domain: "b.test", Full: j(bLatest), Listed: j(b)},
		{Domain: "c.test", Full: j(c)},
	})
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "list.rpz")
	const served = 4000000000
	old := "$ORIGIN " + zone + ".\n@ IN SOA localhost. hostmaster.localhost. ( 4000000000 3600 600 604800 300 )\n@ IN NS localhost.\n"
	if err := os.WriteFile(out, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := export.Write(store, "rpz", out, results.Options{Zone: zone}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Write counted %d listed domains, want 2", n)
	}
	serials, blocked := readRPZ(t, out)
	if !slices.Equal(serials, []uint32{served + 1}) {
		t.Errorf("serials %v, want [%d]: just above the file's", serials, served+1)
	}
	if !slices.Equal(blocked, []string{"a.test", "b.test"}) {
		t.Errorf("the zone blocks %v, want [a.test b.test]", blocked)
	}
	zoneText, _ := os.ReadFile(out)
	if !strings.Contains(string(zoneText), "*.b.test CNAME . ; single-flux") {
		t.Errorf("b.test is not blocked as the flux verdict it is listed on:\n%s", zoneText)
	}

	for _, c := range []struct {
		all  bool
		want map[string]string
	}{
		{false, map[string]string{"a.test": classify.SingleFlux, "b.test": classify.Benign}},
		{true, map[string]string{"a.test": classify.SingleFlux, "b.test": classify.Benign, "c.test": classify.Benign}},
	} {
		var buf bytes.Buffer
		read := 0
		n, err := export.Write(store, "jsonl", "-", results.Options{All: c.all}, &buf, func() { read++ })
		if err != nil {
			t.Fatal(err)
		}
		got := jsonlVerdicts(t, buf.Bytes())
		if n != 2 || read != 3 || len(got) != len(c.want) {
			t.Errorf("jsonl (all %v): %d listed, %d read, verdicts %v; want 2 listed of 3 read, %v", c.all, n, read, got, c.want)
			continue
		}
		for d, v := range c.want {
			if got[d] != v {
				t.Errorf("jsonl (all %v): %s is %s, want %s", c.all, d, got[d], v)
			}
		}
	}
}
