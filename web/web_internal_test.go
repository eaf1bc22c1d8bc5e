package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

func TestWebNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM.":                         "example.com",
		"xn--bcher-kva.ch":                     "xn--bcher-kva.ch",
		"_dmarc.example":                       "_dmarc.example",
		"a":                                    "a",
		"":                                     "",
		".":                                    "",
		"a..b":                                 "",
		"a b.example":                          "",
		"<script>.example":                     "",
		"a/b.example":                          "",
		"%2e%2e":                               "",
		strings.Repeat("a", 64) + ".example":   "",
		strings.Repeat("abcdefgh.", 28) + "io": "",
	} {
		got, err := normalizeName(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("normalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestWebPeekVerdict(t *testing.T) {
	for _, v := range []classify.Verdict{
		{Domain: "a.example", Verdict: classify.DoubleFlux, Evidence: `"verdict":"benign"`},
		{Domain: "verdict", Verdict: classify.Benign},
		{Domain: `a","verdict":"benign`, Verdict: classify.SingleFlux}, // escaped: read token by token
		{Domain: "b.example", Verdict: `odd"verdict`},
	} {
		b, _ := json.Marshal(v)
		if got, err := peekVerdict(b); err != nil || got != v.Verdict {
			t.Errorf("peekVerdict(%s) = %q, %v", b, got, err)
		}
	}
	// Wherever the key is.
	if got, _ := peekVerdict([]byte(`{"features":{"verdict":"x","a":[1,{"b":2}]},"verdict":"benign"}`)); got != "benign" {
		t.Errorf("nested verdict key: %q", got)
	}
	if _, err := peekVerdict([]byte(`[1]`)); err == nil {
		t.Error("a JSON array is not a verdict")
	}
}

// TestWebTimelineStaysBounded feeds a long history: the columns merge so
// that their number stays bounded, and no probe is lost.
func TestWebTimelineStaysBounded(t *testing.T) {
	tl := newTimeline("flux.example", nil)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const rounds, vantages = 5000, 3
	for r := range rounds {
		for v := range vantages {
			a := netip.AddrFrom4([4]byte{10, byte(r >> 8), byte(r), byte(v)})
			tl.add(obs.Probe{Domain: "flux.example", Vantage: fmt.Sprintf("v%d", v), Start: start.Add(time.Duration(r) * time.Minute),
				Observations: []obs.Observation{{Name: "flux.example", QType: dns.TypeA,
					Answer: []obs.Record{{Name: "flux.example", Type: dns.TypeA, TTL: 60, Data: a.String()}}}}})
		}
	}
	tl.finish()
	if len(tl.Columns) > maxColumns || len(tl.Columns) < maxColumns/2 || tl.RoundsPerColumn < rounds/maxColumns {
		t.Fatalf("%d columns of %d rounds each", len(tl.Columns), tl.RoundsPerColumn)
	}
	probes := 0
	for _, c := range tl.Columns {
		for _, cell := range c.Cells {
			probes += cell.Probes
			if len(cell.Addrs) > maxStack {
				t.Fatalf("a cell holds %d addresses", len(cell.Addrs))
			}
		}
		if n, _, _ := c.Counts(); n > tl.RoundsPerColumn*vantages {
			t.Fatalf("a column of %d rounds counts %d addresses", tl.RoundsPerColumn, n)
		}
	}
	if probes != rounds*vantages || tl.Probes != rounds*vantages || !tl.From.Equal(start) {
		t.Fatalf("%d probes in the cells, %d counted, from %s", probes, tl.Probes, tl.From)
	}
	ch := renderCharts(tl, "")
	if ch.Points == 0 || len(ch.Timeline) > 2<<20 {
		t.Fatalf("%d marks in %d bytes of SVG", ch.Points, len(ch.Timeline))
	}
}

// TestWebEscapesStoredText stores a probe whose vantage and answers hold
// markup: the page shows it as text.
func TestWebEscapesStoredText(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "fw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := store.AddDomains([]string{"x.example"}, `<b>src</b>`, now); err != nil {
		t.Fatal(err)
	}
	evil := `<script>alert(1)</script>`
	var probes []obs.Probe
	for i := range 3 {
		at := now.Add(time.Duration(i) * time.Minute)
		probes = append(probes, obs.Probe{Domain: "x.example", Vantage: evil, Start: at, Observations: []obs.Observation{
			{Time: at, Name: "x.example", QType: dns.TypeA, Answer: []obs.Record{{Name: "x.example", Type: dns.TypeA, TTL: 60, Data: "192.0.2.1"}}},
			{Time: at, Name: "x.example", QType: dns.TypeNS, Answer: []obs.Record{{Name: "x.example", Type: dns.TypeNS, TTL: 60, Data: "ns-<i>.example"}}},
		}})
	}
	if _, err := store.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(classify.Verdict{Domain: "x.example", Verdict: classify.Benign, Evidence: evil})
	if err := store.PutVerdicts([]storage.VerdictRecord{{Domain: "x.example", Full: v}}); err != nil {
		t.Fatal(err)
	}
	h := New(store, nil, Options{})
	for _, target := range []string{"/domain/x.example", "/", "/?q=x"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		body := rec.Body.String()
		if rec.Code != 200 || strings.Contains(body, "<script>") || strings.Contains(body, "<b>src") || strings.Contains(body, "ns-<i>") {
			t.Fatalf("%s: status %d; markup from the database reached the page:\n%s", target, rec.Code, body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the stored text is not shown escaped", target)
		}
	}
}

// A timeline draws at most maxVantages rows of vantages and maxNSHosts of
// name servers; the others are counted once each, however often seen.
func TestTimelineRowLimits(t *testing.T) {
	tl := newTimeline("flux.test", nil)
	for round := range 2 {
		for i := range maxVantages + 3 {
			if got := tl.vantage(fmt.Sprintf("192.0.2.%d:53", i)); (i < maxVantages) != (got == i) || (i >= maxVantages) != (got == -1) {
				t.Fatalf("round %d: vantage %d got row %d", round, i, got)
			}
		}
		for i := range maxNSHosts + 2 {
			if got := tl.nsHost(fmt.Sprintf("ns%d.flux.test", i)); (i < maxNSHosts) != (got == i) || (i >= maxNSHosts) != (got == -1) {
				t.Fatalf("round %d: name server %d got row %d", round, i, got)
			}
		}
	}
	if len(tl.Vantages) != maxVantages || tl.MoreVantages != 3 || len(tl.NSHosts) != maxNSHosts || tl.MoreNSHosts != 2 {
		t.Fatalf("%d vantages (+%d), %d name servers (+%d)", len(tl.Vantages), tl.MoreVantages, len(tl.NSHosts), tl.MoreNSHosts)
	}
}
