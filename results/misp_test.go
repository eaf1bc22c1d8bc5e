package results_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
)

// mispFeed is a MISP feed directory read back.
type mispFeed struct {
	eventID  string
	manifest mispMeta
	event    mispMeta
	attrs    []mispAttr
	hashes   []string
}

// mispMeta holds the event fields the manifest and the event share (and
// the event's own); numbers are strings, as in the MISP core format.
type mispMeta struct {
	UUID             string `json:"uuid"`
	Info             string `json:"info"`
	Date             string `json:"date"`
	Timestamp        string `json:"timestamp"`
	PublishTimestamp string `json:"publish_timestamp"`
	Published        *bool  `json:"published"`
	Analysis         string `json:"analysis"`
	ThreatLevelID    string `json:"threat_level_id"`
	Orgc             struct {
		Name string `json:"name"`
		UUID string `json:"uuid"`
	} `json:"Orgc"`
	Tag       []json.RawMessage `json:"Tag"`
	Attribute []mispAttr        `json:"Attribute"`
}

type mispAttr struct {
	UUID      string `json:"uuid"`
	Type      string `json:"type"`
	Category  string `json:"category"`
	ToIDs     *bool  `json:"to_ids"`
	Value     string `json:"value"`
	Comment   string `json:"comment"`
	Timestamp string `json:"timestamp"`
	Deleted   *bool  `json:"deleted"`
}

var uuidV5 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// readMISP reads a feed directory by the rules of MISP's feed format: a
// manifest.json naming each event by its UUID, an event file <uuid>.json
// for each, and hashes.csv with a line <md5 of the value>,<event uuid>
// for every attribute.
func readMISP(t *testing.T, dir string) mispFeed {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]mispMeta
	if err := json.Unmarshal(b, &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v, %d events:\n%s", err, len(manifest), b)
	}
	var f mispFeed
	for id, m := range manifest {
		f.eventID, f.manifest = id, m
	}
	if !uuidV5.MatchString(f.eventID) {
		t.Errorf("event UUID %q is not a version 5 UUID", f.eventID)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{f.eventID + ".json", "hashes.csv", "manifest.json"}; !slices.Equal(names, want) {
		t.Errorf("feed directory holds %q, want %q", names, want)
	}
	b, err = os.ReadFile(filepath.Join(dir, f.eventID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var event struct {
		Event *mispMeta `json:"Event"`
	}
	if err := json.Unmarshal(b, &event); err != nil || event.Event == nil {
		t.Fatalf("event file: %v\n%s", err, b)
	}
	f.event, f.attrs = *event.Event, event.Event.Attribute
	b, err = os.ReadFile(filepath.Join(dir, "hashes.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 {
		f.hashes = lines(b)
	}
	return f
}

func TestWriteMISP(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	vs := agentVerdicts()
	for i := range vs {
		vs[i].ClassifiedAt = t0.Add(time.Duration(i) * time.Minute)
	}
	for _, tt := range []struct {
		opts          results.Options
		org           string
		wantTimestamp time.Time
	}{
		{results.Options{Now: now}, "fluxwatch", now},
		{results.Options{Org: "CIRCL-like, \"quoted\" org"}, "CIRCL-like, \"quoted\" org", t0.Add(6 * time.Minute)}, // the latest verdict
	} {
		dir := filepath.Join(t.TempDir(), "feed")
		if err := results.WriteDir(dir, "misp", verdictsInOrder(vs), tt.opts); err != nil {
			t.Fatal(err)
		}
		f := readMISP(t, dir)
		ts := strconv.FormatInt(tt.wantTimestamp.Unix(), 10)
		for _, m := range []mispMeta{f.manifest, f.event} {
			if m.Info != "fluxwatch fast-flux domains" || m.Date != tt.wantTimestamp.Format("2006-01-02") || m.Timestamp != ts ||
				m.Analysis != "1" || m.ThreatLevelID != "3" || m.Orgc.Name != tt.org || !uuidV5.MatchString(m.Orgc.UUID) || m.Tag == nil {
				t.Errorf("event meta %+v, want timestamp %s and organisation %q", m, ts, tt.org)
			}
		}
		if e := f.event; e.UUID != f.eventID || e.Published == nil || !*e.Published || e.PublishTimestamp != ts {
			t.Errorf("event uuid %q published %v at %q; want %s, published at %s", e.UUID, e.Published, e.PublishTimestamp, f.eventID, ts)
		}
		if f.manifest.UUID != "" || f.manifest.Attribute != nil {
			t.Errorf("the manifest holds more than the event's meta: %+v", f.manifest)
		}
		byName := map[string]classify.Verdict{}
		for _, v := range vs {
			byName[v.Domain] = v
		}
		var values []string
		seen := map[string]bool{}
		for i, a := range f.attrs {
			v := byName[a.Value]
			if a.Type != "domain" || a.Category != "Network activity" || a.ToIDs == nil || !*a.ToIDs || a.Deleted == nil || *a.Deleted ||
				a.Comment != v.Verdict+", confidence "+strconv.FormatFloat(v.Confidence, 'f', 2, 64) ||
				a.Timestamp != strconv.FormatInt(v.ClassifiedAt.Unix(), 10) || !uuidV5.MatchString(a.UUID) || seen[a.UUID] {
				t.Errorf("attribute %+v", a)
			}
			seen[a.UUID] = true
			values = append(values, a.Value)
			sum := md5.Sum([]byte(a.Value))
			if i >= len(f.hashes) || f.hashes[i] != hex.EncodeToString(sum[:])+","+f.eventID {
				t.Errorf("hashes.csv line %d is not md5(%s),%s: %q", i+1, a.Value, f.eventID, f.hashes)
			}
		}
		if !slices.Equal(values, listedNames) || len(f.hashes) != len(f.attrs) {
			t.Errorf("attributes for %q (%d hashes), want %q", values, len(f.hashes), listedNames)
		}
	}
}

// An export is a new version of the same event: the event's, the
// organisation's and each domain's UUIDs do not change with the time of
// the export, only with the organisation.
func TestMISPIDsAreStable(t *testing.T) {
	read := func(vs []classify.Verdict, opts results.Options) mispFeed {
		dir := filepath.Join(t.TempDir(), "feed")
		if err := results.WriteDir(dir, "misp", verdictsInOrder(vs), opts); err != nil {
			t.Fatal(err)
		}
		return readMISP(t, dir)
	}
	ids := func(f mispFeed) map[string]string {
		m := map[string]string{"event": f.eventID, "org": f.event.Orgc.UUID}
		for _, a := range f.attrs {
			m[a.Value] = a.UUID
		}
		return m
	}
	a := read(agentVerdicts(), results.Options{Now: t0})
	b := read(agentVerdicts()[:3], results.Options{Now: t0.Add(24 * time.Hour)}) // a day later, fewer domains
	c := read(agentVerdicts(), results.Options{Now: t0, Org: "other"})
	for k, id := range ids(b) {
		if ids(a)[k] != id {
			t.Errorf("%s: UUID %s, then %s", k, ids(a)[k], id)
		}
	}
	if a.event.Timestamp == b.event.Timestamp {
		t.Error("a later export has the same event timestamp: MISP would not pull it")
	}
	for k, id := range ids(c) {
		if ids(a)[k] == id {
			t.Errorf("%s: organisations fluxwatch and other share UUID %s", k, id)
		}
	}
}

func TestWriteMISPNothingListed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "feed")
	benign := []classify.Verdict{{Domain: "ok.test", Verdict: classify.Benign, ClassifiedAt: t0}}
	if err := results.WriteDir(dir, "misp", verdictsInOrder(benign), results.Options{Now: t0}); err != nil {
		t.Fatal(err)
	}
	f := readMISP(t, dir)
	if len(f.attrs) != 0 || len(f.hashes) != 0 || f.event.Timestamp != strconv.FormatInt(t0.Unix(), 10) {
		t.Errorf("feed with nothing listed: %d attributes, %d hashes, timestamp %s", len(f.attrs), len(f.hashes), f.event.Timestamp)
	}
	b, _ := os.ReadFile(filepath.Join(dir, f.eventID+".json"))
	if !strings.HasPrefix(string(b), `{"Event":{"Attribute":[],`) {
		t.Errorf("event with no attribute: %s", b)
	}
}

// A refused export leaves the previous feed as it was.
func TestWriteMISPKeepsFeedOnError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "feed")
	if err := results.WriteDir(dir, "misp", verdictsInOrder(agentVerdicts()), results.Options{Now: t0}); err != nil {
		t.Fatal(err)
	}
	before := dump(t, dir)
	bad := append(agentVerdicts(), classify.Verdict{Domain: "zz.test\",\"to_ids\":false", Verdict: classify.SingleFlux, Listing: listing})
	if err := results.WriteDir(dir, "misp", verdictsInOrder(bad), results.Options{Now: t0.Add(time.Hour)}); !errors.Is(err, results.ErrBadName) {
		t.Fatalf("WriteDir with a bad name = %v, want ErrBadName", err)
	}
	if after := dump(t, dir); string(after) != string(before) {
		t.Errorf("a refused export changed the feed:\n%s\nwas\n%s", after, before)
	}
	assertOnly(t, filepath.Dir(dir), "feed")
}
