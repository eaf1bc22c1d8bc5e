package results_test

import (
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/results"
)

// The resolver and adblock lists read back line by line: every line is a
// rule for one listed name, in name order, and nothing else.
func TestWriteResolverLists(t *testing.T) {
	tests := []struct {
		format string
		opts   results.Options
		header []string
		rule   *regexp.Regexp // the name is its first group
	}{
		{"dnsmasq", results.Options{}, nil, regexp.MustCompile(`^address=/([a-z0-9_.-]+)/$`)},
		{"unbound", results.Options{}, nil, regexp.MustCompile(`^local-zone: "([a-z0-9_.-]+)\." always_nxdomain$`)},
		{"adblock", results.Options{}, []string{"! Title: fluxwatch fast-flux domains"},
			regexp.MustCompile(`^\|\|([a-z0-9_.-]+)\^$`)},
		{"adblock", results.Options{Now: time.Date(2026, 3, 1, 13, 30, 0, 0, time.FixedZone("CET", 3600))},
			[]string{"! Title: fluxwatch fast-flux domains", "! Updated: 2026-03-01T12:30:00Z"},
			regexp.MustCompile(`^\|\|([a-z0-9_.-]+)\^$`)},
	}
	for _, tt := range tests {
		for _, all := range []bool{false, true} { // All never puts unlisted names on a block list
			tt.opts.All = all
			got := lines(write(t, tt.format, verdicts(), tt.opts))
			if len(got) < len(tt.header) || !slices.Equal(got[:len(tt.header)], tt.header) {
				t.Errorf("%s (All=%v): header %q, want %q", tt.format, all, got, tt.header)
				continue
			}
			var names []string
			for _, l := range got[len(tt.header):] {
				m := tt.rule.FindStringSubmatch(l)
				if m == nil {
					t.Errorf("%s (All=%v): line %q does not match %s", tt.format, all, l, tt.rule)
					continue
				}
				names = append(names, m[1])
			}
			if !reflect.DeepEqual(names, listedNames) {
				t.Errorf("%s (All=%v): names %q, want %q", tt.format, all, names, listedNames)
			}
		}
	}
	if !results.IsBlockList("dnsmasq") || !results.IsBlockList("unbound") || !results.IsBlockList("adblock") || !results.IsBlockList("stix") {
		t.Error("a new block list format is not a block list")
	}
	if results.IsBlockList("jsonl") || results.IsBlockList("csv") {
		t.Error("jsonl or csv is a block list")
	}
}
