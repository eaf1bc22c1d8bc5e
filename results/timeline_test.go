package results_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The timeline puts each vantage's k-th probe in row k, counts the
// addresses each vantage answered and how many were new, keeps running
// totals, and lists (marks) the new addresses under the table.
func TestWriteTimeline(t *testing.T) {
	s := historyStore(t)
	var buf bytes.Buffer
	v := &classify.Verdict{Domain: "flux.test", Verdict: classify.SingleFlux, Confidence: 0.8,
		Listing: &classify.Listing{FirstListed: t0, LastConfirmed: t0, ExpiresAt: t0.Add(time.Hour)}}
	if err := results.WriteTimeline(&buf, s, "flux.test", results.TimelineOptions{Verdict: v}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"V1 = 127.0.0.1:5301\nV2 = [::1]:5302\n",
		"ROUND  TIME                  V1      V2      NEW  ADDRS  ASNS  CC\n",
		"1      2026-03-01 12:00:00Z  3 (+3)  2 (+2)  5    5      0     0\n",
		"round 1 new: +192.0.2.10 +198.51.100.1 +198.51.100.9 +203.0.113.5 +203.0.113.7\n",
		"listed since 2026-03-01T12:00:00Z",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := results.WriteTimeline(&buf, s, "flux.test", results.TimelineOptions{Color: true}); err != nil || !strings.Contains(buf.String(), "\x1b[1;32m192.0.2.10\x1b[0m") {
		t.Fatalf("colour: %v\n%q", err, buf.String())
	}
	buf.Reset()
	if err := results.WriteTimeline(&buf, s, "quiet.test", results.TimelineOptions{}); err != nil || !strings.Contains(buf.String(), "no measurements yet") {
		t.Fatalf("unmeasured: %v\n%s", err, buf.String())
	}
	if err := results.WriteTimeline(&buf, s, "nope.test", results.TimelineOptions{}); err == nil {
		t.Fatal("no error for an unknown domain")
	}
	// A dark domain says so, and when it is measured next.
	if strings.Contains(out, "dark:") {
		t.Fatal("an answered domain shown as dark")
	}
	next := t0.Add(8 * time.Hour)
	if err := s.SetMeasured([]storage.Measured{{Domain: "quiet.test", At: next, Dark: storage.DarkAfter + 1}}); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := results.WriteTimeline(&buf, s, "quiet.test", results.TimelineOptions{}); err != nil ||
		!strings.Contains(buf.String(), "dark: no vantage answered its last 4 measurements; measured less often until one does (next 2026-03-01T20:00:00Z)") {
		t.Fatalf("dark domain: %v\n%s", err, buf.String())
	}
	if c, err := s.CountDomains(); err != nil || c.Dark != 1 || c.Active < 2 {
		t.Fatalf("domain counts %+v, %v; want one dark", c, err)
	}
}
