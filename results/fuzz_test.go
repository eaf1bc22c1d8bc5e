package results_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
)

// exportable is the rule for names every format can hold, written again
// here so that the fuzz target does not trust checkName to check itself.
var exportable = regexp.MustCompile(`^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$`)

// ruleLines are the lines of the line formats that are not comments or the
// zone's head, the name their first group; an RPZ blocks each name with two.
var ruleLines = map[string][]*regexp.Regexp{
	"domains": {regexp.MustCompile(`^(.*)$`)},
	"hosts":   {regexp.MustCompile(`^0\.0\.0\.0 (.*)$`)},
	"dnsmasq": {regexp.MustCompile(`^address=/(.*)/$`)},
	"unbound": {regexp.MustCompile(`^local-zone: "(.*)\." always_nxdomain$`)},
	"adblock": {regexp.MustCompile(`^\|\|(.*)\^$`)},
	"rpz": {regexp.MustCompile(`^(.*) CNAME \.$`),
		regexp.MustCompile(`^\*\.(.*) CNAME \. ; [a-z-]+ 0\.87$`)},
}

// FuzzExport writes one verdict of a fuzzed name and kind (and one benign
// verdict) in every format. A write fails only with ErrBadName, and does
// fail for a listed name outside the rule above; otherwise each format
// reads back as what it claims to be and holds the listed name exactly
// where it should, and no control character but the newline.
func FuzzExport(f *testing.F) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	for _, name := range []string{
		"flux.example", "xn--bcher-kva.example", "under_score.example", "-lead.example", "a",
		"a\nb.example", "a b.example", "a\"b.example", "a;b.example", `a\b.example`, "a'b.example", "a/b.example",
		"Upper.Example", "b\u00fccher.example", "", ".", "a..b", "trailing.", "a\x00b", "a\rb",
		long, long + "d", long[:240], "\x91", "a.\xff.example",
	} {
		f.Add(name, uint8(0))
	}
	f.Add("flux.example", uint8(1))
	f.Add("benign.example", uint8(2))
	f.Add("a\nb", uint8(3))
	kinds := []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign, classify.InsufficientData, classify.Unresolvable}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	opts := results.Options{Now: at, Serial: 7}
	f.Fuzz(func(t *testing.T, name string, kind uint8) {
		v := classify.Verdict{Domain: name, Verdict: kinds[int(kind)%len(kinds)], Score: 0.87, Confidence: 0.7,
			Evidence: "12 addresses in 9 networks", ClassifiedAt: at}
		verdicts := []classify.Verdict{v, {Domain: "benign.example", Verdict: classify.Benign, ClassifiedAt: at}}
		listed := classify.Listed(v.Verdict)
		want := 0 // entries of the name in each output
		if listed {
			want = 1
		}
		for _, format := range results.Formats {
			var buf bytes.Buffer
			err := results.Write(&buf, format, verdicts, opts)
			tooLong := format == "rpz" && len("*."+name+".fluxwatch.rpz") > 253
			if err != nil {
				if !errors.Is(err, results.ErrBadName) {
					t.Fatalf("%s: error %v does not wrap ErrBadName", format, err)
				}
				if !listed || exportable.MatchString(name) && len(name) <= 253 && !tooLong {
					t.Fatalf("%s: %q (%s) refused: %v", format, name, v.Verdict, err)
				}
				continue
			}
			if listed && (!exportable.MatchString(name) || len(name) > 253 || tooLong) {
				t.Fatalf("%s: %q (%s) written:\n%s", format, name, v.Verdict, buf.Bytes())
			}
			out := buf.String()
			if i := strings.IndexFunc(out, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }); i >= 0 {
				t.Fatalf("%s: control character %q at %d:\n%s", format, out[i], i, out)
			}
			if out != "" && !strings.HasSuffix(out, "\n") { // an empty list is an empty file
				t.Fatalf("%s: output does not end in a newline:\n%s", format, out)
			}
			switch format {
			case "jsonl":
				n := 0
				for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					if l == "" {
						continue
					}
					var got classify.Verdict
					if err := json.Unmarshal([]byte(l), &got); err != nil {
						t.Fatalf("jsonl: line %q: %v", l, err)
					}
					if got.Domain != name || got.Verdict != v.Verdict {
						t.Fatalf("jsonl: line %q is not the verdict of %q", l, name)
					}
					n++
				}
				if n != want {
					t.Fatalf("jsonl: %d lines, want %d:\n%s", n, want, out)
				}
			case "stix":
				var bundle struct {
					Type    string `json:"type"`
					Objects []struct {
						Name    string `json:"name"`
						Pattern string `json:"pattern"`
					} `json:"objects"`
				}
				if err := json.Unmarshal(buf.Bytes(), &bundle); err != nil || bundle.Type != "bundle" {
					t.Fatalf("stix: not a bundle (%v):\n%s", err, out)
				}
				if len(bundle.Objects) != want {
					t.Fatalf("stix: %d objects, want %d:\n%s", len(bundle.Objects), want, out)
				}
				for _, o := range bundle.Objects {
					if o.Name != "fast-flux domain "+name || o.Pattern != "[domain-name:value = '"+name+"']" {
						t.Fatalf("stix: indicator %+v is not for %q", o, name)
					}
				}
			case "csv":
				rows, err := csv.NewReader(&buf).ReadAll()
				if err != nil {
					t.Fatalf("csv: %v:\n%s", err, out)
				}
				if len(rows) != 1+want || rows[0][0] != "domain" {
					t.Fatalf("csv: %d rows, want a header and %d:\n%s", len(rows), want, out)
				}
				for _, r := range rows[1:] {
					if r[0] != name || r[1] != v.Verdict {
						t.Fatalf("csv: row %q is not the verdict of %q", r, name)
					}
				}
			default:
				rules, n := ruleLines[format], 0
				for _, l := range strings.SplitAfter(out, "\n") {
					l, ok := strings.CutSuffix(l, "\n")
					if !ok {
						continue // after the last line
					}
					if format == "adblock" && strings.HasPrefix(l, "!") ||
						format == "rpz" && (strings.HasPrefix(l, ";") || strings.HasPrefix(l, "$") || strings.HasPrefix(l, "@ ")) {
						continue // comments and the zone's head
					}
					if m := rules[n%len(rules)].FindStringSubmatch(l); m == nil || m[1] != name {
						t.Fatalf("%s: line %q is not the rule for %q:\n%s", format, l, name, out)
					}
					n++
				}
				if n != want*len(rules) {
					t.Fatalf("%s: %d rule lines, want %d:\n%s", format, n, want*len(rules), out)
				}
			}
		}
	})
}
