package results_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
)

type stixBundle struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Objects []struct {
		Type           string   `json:"type"`
		SpecVersion    string   `json:"spec_version"`
		ID             string   `json:"id"`
		Created        string   `json:"created"`
		Modified       string   `json:"modified"`
		Name           string   `json:"name"`
		Description    string   `json:"description"`
		IndicatorTypes []string `json:"indicator_types"`
		Pattern        string   `json:"pattern"`
		PatternType    string   `json:"pattern_type"`
		ValidFrom      string   `json:"valid_from"`
		ValidUntil     string   `json:"valid_until"`
		Confidence     *int     `json:"confidence"`
		Labels         []string `json:"labels"`
	} `json:"objects"`
}

var (
	indicatorID = regexp.MustCompile(`^indicator--[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	bundleID    = regexp.MustCompile(`^bundle--[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	stixStamp   = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	domainPat   = regexp.MustCompile(`^\[domain-name:value = '([a-z0-9_.-]+)'\]$`)
)

func readBundle(t *testing.T, out []byte) stixBundle {
	t.Helper()
	var b stixBundle
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("STIX bundle is not JSON: %v\n%s", err, out)
	}
	if b.Type != "bundle" || !bundleID.MatchString(b.ID) {
		t.Errorf("bundle type %q id %q", b.Type, b.ID)
	}
	return b
}

// TestWriteSTIX reads the bundle back: one well-formed indicator per listed
// domain, in name order, valid for ValidFor from its verdict.
func TestWriteSTIX(t *testing.T) {
	confidences := map[string]float64{"a-fast.test": 0.874, "double.flux.test": 1, "fastflux-b.test": 0, "xn--bcher-kva.test": 1.5}
	wantConfidence := map[string]int{"a-fast.test": 87, "double.flux.test": 100, "fastflux-b.test": 0, "xn--bcher-kva.test": 100}
	vs := verdicts()
	byName := map[string]classify.Verdict{}
	for i := range vs {
		vs[i].Confidence = confidences[vs[i].Domain]
		vs[i].ClassifiedAt = vs[i].ClassifiedAt.Add(1234567891 * time.Nanosecond) // below the millisecond is dropped
		byName[vs[i].Domain] = vs[i]
	}
	for _, tt := range []struct {
		opts     results.Options
		validFor time.Duration
	}{
		{results.Options{}, 7 * 24 * time.Hour},
		{results.Options{All: true, ValidFor: 25 * time.Hour}, 25 * time.Hour},
		{results.Options{ValidFor: 5 * time.Minute, Serial: 3}, 5 * time.Minute},
	} {
		b := readBundle(t, write(t, "stix", vs, tt.opts))
		var names []string
		ids := map[string]bool{}
		for _, o := range b.Objects {
			m := domainPat.FindStringSubmatch(o.Pattern)
			if m == nil {
				t.Errorf("pattern %q", o.Pattern)
				continue
			}
			name := m[1]
			names = append(names, name)
			v := byName[name]
			if o.Type != "indicator" || o.SpecVersion != "2.1" || o.PatternType != "stix" ||
				!reflect.DeepEqual(o.IndicatorTypes, []string{"malicious-activity"}) {
				t.Errorf("%s: type %q spec_version %q pattern_type %q indicator_types %q", name, o.Type, o.SpecVersion, o.PatternType, o.IndicatorTypes)
			}
			if !indicatorID.MatchString(o.ID) || ids[o.ID] {
				t.Errorf("%s: id %q malformed or repeated", name, o.ID)
			}
			ids[o.ID] = true
			if o.Name != "fast-flux domain "+name || o.Description != v.Evidence || !reflect.DeepEqual(o.Labels, []string{v.Verdict}) {
				t.Errorf("%s: name %q description %q labels %q", name, o.Name, o.Description, o.Labels)
			}
			for _, ts := range []string{o.Created, o.Modified, o.ValidFrom, o.ValidUntil} {
				if !stixStamp.MatchString(ts) {
					t.Errorf("%s: timestamp %q not RFC 3339 UTC with milliseconds", name, ts)
				}
			}
			from, err1 := time.Parse(time.RFC3339Nano, o.ValidFrom)
			until, err2 := time.Parse(time.RFC3339Nano, o.ValidUntil)
			if err1 != nil || err2 != nil || until.Sub(from) != tt.validFor {
				t.Errorf("%s: valid %s to %s, want %v apart", name, o.ValidFrom, o.ValidUntil, tt.validFor)
			}
			if want := v.ClassifiedAt.Truncate(time.Millisecond); !from.Equal(want) || o.Created != o.ValidFrom || o.Modified != o.Created {
				t.Errorf("%s: created %s modified %s valid_from %s, want all %s", name, o.Created, o.Modified, o.ValidFrom, want)
			}
			if o.Confidence == nil || *o.Confidence < 0 || *o.Confidence > 100 || *o.Confidence != wantConfidence[name] {
				t.Errorf("%s: confidence %v, want %d", name, o.Confidence, wantConfidence[name])
			}
		}
		if !reflect.DeepEqual(names, listedNames) {
			t.Errorf("STIX %+v: names %q, want %q", tt.opts, names, listedNames)
		}
	}
}

// Ids are stable: a domain keeps its indicator id from export to export,
// and a bundle's id follows the serial and the export time.
func TestSTIXIDsStable(t *testing.T) {
	ids := func(opts results.Options, vs []classify.Verdict) (string, map[string]string) {
		b := readBundle(t, write(t, "stix", vs, opts))
		m := map[string]string{}
		for _, o := range b.Objects {
			m[o.Pattern] = o.ID
		}
		return b.ID, m
	}
	later := verdicts()
	for i := range later {
		later[i].ClassifiedAt = later[i].ClassifiedAt.Add(48 * time.Hour)
		later[i].Evidence = "changed"
	}
	b1, i1 := ids(results.Options{Serial: 1}, verdicts())
	b2, i2 := ids(results.Options{Serial: 1}, later[:3])
	b3, _ := ids(results.Options{Serial: 2}, verdicts())
	b4, _ := ids(results.Options{Serial: 1, Now: t0}, verdicts())
	for p, id := range i2 {
		if i1[p] != id {
			t.Errorf("%s: id %s, then %s", p, i1[p], id)
		}
	}
	if b1 != b2 || b1 == b3 || b1 == b4 || b3 == b4 {
		t.Errorf("bundle ids %s %s %s %s: want the first two equal, the others distinct", b1, b2, b3, b4)
	}
}
