package schema_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/schema"
	"github.com/fluxwatch/fluxwatch/simnet"
)

// compile compiles the schema named, with the others beside it for the
// references between them, asserting formats (date-time).
func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := fs.Glob(schema.FS, "*.schema.json")
	if err != nil || len(files) != 3 {
		t.Fatalf("schema files %q: %v", files, err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(schema.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.AddResource("file:///schema/"+f, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	s, err := c.Compile("file:///schema/" + name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func instance(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// renamed calls fn with a copy of v in which one key of one object is
// renamed, for every key of every object in v.
func renamed(v any, path string, fn func(path string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k := range x {
			c := cloneJSON(x)
			c[k+"_renamed"] = c[k]
			delete(c, k)
			fn(path+"."+k, c)
			renamed(x[k], path+"."+k, func(p string, inner any) {
				c := cloneJSON(x)
				c[k] = inner
				fn(p, c)
			})
		}
	case []any:
		for i, e := range x {
			renamed(e, path+"[]", func(p string, inner any) {
				c := slices.Clone(x)
				c[i] = inner
				fn(p, c)
			})
			if i == 0 { // the items share one schema
				break
			}
		}
	}
}

func cloneJSON(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// strict checks that good validates against s and that renaming any key
// in it makes it fail.
func strict(t *testing.T, s *jsonschema.Schema, good []byte) {
	t.Helper()
	v := instance(t, good)
	if err := s.Validate(v); err != nil {
		t.Fatalf("%s does not validate: %v", good, err)
	}
	n := 0
	renamed(v, "", func(path string, bad any) {
		n++
		if err := s.Validate(bad); err == nil {
			t.Errorf("%s renamed still validates", path)
		}
	})
	if n < 10 {
		t.Fatalf("only %d keys renamed in %s", n, good)
	}
}

var t0 = time.Date(2026, 11, 27, 9, 0, 1, 123456789, time.UTC)

// A probe with every key the form has, as importer.Encode writes it.
func TestObservationSchema(t *testing.T) {
	s := compile(t, schema.Observation)
	p := obs.Probe{Domain: "flux.example", Vantage: "127.0.0.1:5301", Start: t0, Observations: []obs.Observation{
		{Time: t0.Add(time.Millisecond), Name: "flux.example", QType: dns.TypeA, Flags: obs.FlagRA | obs.FlagAA, RTT: 1234 * time.Microsecond,
			Answer: []obs.Record{{Name: "flux.example", Type: dns.TypeA, TTL: 60, Data: "192.0.2.1"}}},
		{Time: t0.Add(2 * time.Millisecond), Name: "flux.example", QType: dns.TypeAAAA, Rcode: dns.RcodeServerFailure, Err: obs.ServFail},
		{Time: t0.Add(3 * time.Millisecond), Name: "flux.example", QType: 65, Rcode: 23, Err: obs.OtherRcode, Flags: 1 << 7},
	}}
	var b bytes.Buffer
	if err := importer.Encode(&b, p); err != nil {
		t.Fatal(err)
	}
	strict(t, s, b.Bytes())
	for _, bad := range []string{
		`{"domain":"flux.example","vantage":"v","start":"2026-11-27T09:00:01Z","observations":[]}`,
		`{"domain":"flux.example","vantage":"v","start":"yesterday","observations":[{"time":"2026-11-27T09:00:01Z","name":"a","qtype":"A","rcode":"NOERROR","rtt_us":1}]}`,
		`{"domain":"flux.example","vantage":"v","start":"2026-11-27T09:00:01Z","observations":[{"time":"2026-11-27T09:00:01Z","name":"a","qtype":"A","rcode":"NOERROR","flags":"ra","rtt_us":1}]}`,
		`{"domain":"flux.example","vantage":"v","start":"2026-11-27T09:00:01Z","observations":[{"time":"2026-11-27T09:00:01Z","name":"a","qtype":"A","rcode":"NOERROR","rtt_ms":1.5}]}`,
		`{"domain":"flux.example","vantage":"v","start":"2026-11-27T09:00:01Z","observations":[{"time":"2026-11-27T09:00:01Z","name":"a","qtype":"A","rcode":"NOERROR","rtt_us":1,"err":"ok"}]}`,
	} {
		if err := s.Validate(instance(t, []byte(bad))); err == nil {
			t.Errorf("validates: %s", bad)
		}
	}
}

func flaggedVerdict() classify.Verdict {
	return classify.Verdict{Domain: "evil.example", Verdict: classify.DoubleFlux, Score: 0.9, Confidence: 0.8,
		Evidence: "12 addresses in 9 networks", ClassifiedAt: t0,
		Features: classify.Features{Probes: 8, Vantages: 4, Rounds: 2, Addresses: 12, Networks: 9, TopNetworkShare: 0.2,
			PerVantage:  []classify.VantageFeatures{{Vantage: "127.0.0.1:5301", Rounds: 2, Addresses: 6, SetChanges: 1}},
			CNAMETarget: "edge.cdn.example", CDN: "cdn.example", Errors: map[string]int{"timeout": 2},
			FirstSeen: t0.Add(-time.Hour), LastSeen: t0, ASNTable: true, Sample: []string{"192.0.2.1"}, TopNetworks: []string{"AS64500 ZZ 3"}},
		Agents: []string{"192.0.2.1"}, NameServers: []string{"ns1.evil.example"}, NSAgents: []string{"198.51.100.53"},
		Listing: &classify.Listing{FirstListed: t0.Add(-time.Hour), LastConfirmed: t0, ExpiresAt: t0.Add(7 * 24 * time.Hour)},
		Names:   3, Truth: simnet.ClassDoubleFlux}
}

// A verdict with every key set, as classify --json writes it; and one with
// none of the optional keys.
func TestVerdictSchema(t *testing.T) {
	s := compile(t, schema.Verdict)
	b, err := json.Marshal(flaggedVerdict())
	if err != nil {
		t.Fatal(err)
	}
	strict(t, s, b)
	b, _ = json.Marshal(classify.Verdict{Domain: "quiet.example", Verdict: classify.Unresolvable, ClassifiedAt: t0})
	if err := s.Validate(instance(t, b)); err != nil {
		t.Errorf("%s: %v", b, err)
	}
}

// A listing is a verdict with its listing.
func TestListingSchema(t *testing.T) {
	s := compile(t, schema.Listing)
	b, _ := json.Marshal(flaggedVerdict())
	strict(t, s, b)
	v := flaggedVerdict()
	v.Listing = nil
	b, _ = json.Marshal(v)
	if err := s.Validate(instance(t, b)); err == nil {
		t.Errorf("a verdict without a listing validates as a listing: %s", b)
	}
}

// The schemas name what the code names: the verdicts, error classes and
// flags, and every key of the Go types behind the verdict, required when
// it is always written.
func TestSchemasFollowTheCode(t *testing.T) {
	var obsSchema, verdictSchema map[string]any
	for name, p := range map[string]*map[string]any{schema.Observation: &obsSchema, schema.Verdict: &verdictSchema} {
		b, _ := fs.ReadFile(schema.FS, name)
		if err := json.Unmarshal(b, p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	get := func(m map[string]any, path ...string) any {
		var v any = m
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		return v
	}
	strs := func(v any) []string {
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	if got := strs(get(verdictSchema, "properties", "verdict", "enum")); !slices.Equal(got, classify.Verdicts) {
		t.Errorf("verdict enum %q; classify.Verdicts %q", got, classify.Verdicts)
	}
	var classes []string
	for _, c := range obs.ErrClasses()[1:] {
		classes = append(classes, c.String())
	}
	if got := strs(get(obsSchema, "$defs", "observation", "properties", "err", "enum")); !slices.Equal(got, classes) {
		t.Errorf("err enum %q; obs.ErrClasses %q", got, classes)
	}
	if got := strs(get(verdictSchema, "$defs", "features", "properties", "errors", "propertyNames", "enum")); !slices.Equal(got, classes) {
		t.Errorf("errors enum %q; obs.ErrClasses %q", got, classes)
	}
	var flags []string
	for i := range 8 {
		if f := obs.Flags(1 << i).String(); f != "" {
			flags = append(flags, f)
		}
	}
	flagItems := get(obsSchema, "$defs", "observation", "properties", "flags", "items", "anyOf").([]any)
	if got := strs(flagItems[0].(map[string]any)["enum"]); !slices.Equal(got, flags) {
		t.Errorf("flags enum %q; obs.Flags names %q", got, flags)
	}
	for _, c := range []struct {
		path []string
		typ  reflect.Type
	}{
		{nil, reflect.TypeFor[classify.Verdict]()},
		{[]string{"$defs", "features"}, reflect.TypeFor[classify.Features]()},
		{[]string{"$defs", "vantage_features"}, reflect.TypeFor[classify.VantageFeatures]()},
		{[]string{"$defs", "listing"}, reflect.TypeFor[classify.Listing]()},
	} {
		obj := get(verdictSchema, c.path...).(map[string]any)
		var keys, required []string
		for i := range c.typ.NumField() {
			name, opts, _ := strings.Cut(c.typ.Field(i).Tag.Get("json"), ",")
			keys = append(keys, name)
			if !strings.Contains(opts, "omit") {
				required = append(required, name)
			}
		}
		var props []string
		for k := range obj["properties"].(map[string]any) {
			props = append(props, k)
		}
		slices.Sort(keys)
		slices.Sort(props)
		got := strs(obj["required"])
		slices.Sort(got)
		slices.Sort(required)
		if !slices.Equal(props, keys) || !slices.Equal(got, required) || obj["additionalProperties"] != false {
			t.Errorf("%s: schema properties %q required %q; Go keys %q always written %q", c.typ, props, got, keys, required)
		}
	}
}
