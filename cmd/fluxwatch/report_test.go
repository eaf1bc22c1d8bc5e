package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
	"github.com/fluxwatch/fluxwatch/web"
)

// outsideRef matches whatever would make a page load something from
// elsewhere: absolute or protocol-relative src/href, CSS imports and
// url(), external scripts and stylesheets.
var outsideRef = regexp.MustCompile(`(?i)(src|href|action)\s*=\s*["']?\s*(https?:|//)|@import|url\(|<script|<link|<iframe|<img`)

// reportSections returns, by domain, the data-points of each domain
// section's timeline in a report.
func reportSections(t *testing.T, doc *html.Node) map[string]int {
	t.Helper()
	out := map[string]int{}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "section" {
			continue
		}
		domain := htmlAttr(n, "data-domain")
		out[domain] = -1
		for c := range n.Descendants() {
			if c.Type == html.ElementNode && c.Data == "svg" && strings.HasPrefix(htmlAttr(c, "id"), "timeline-") {
				marks := 0
				for m := range c.Descendants() {
					if m.Type == html.ElementNode && m.Data == "rect" && htmlAttr(m, "class") == "m" {
						marks++
					}
				}
				if htmlAttr(c, "data-points") != strconv.Itoa(marks) {
					t.Errorf("%s: data-points %q, %d marks", domain, htmlAttr(c, "data-points"), marks)
				}
				out[domain] = marks
			}
		}
	}
	return out
}

func htmlAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestReportIsSelfContained(t *testing.T) {
	w, err := simnet.Start(t.Context(), simnet.Config{Seed: 6, Speed: 300, SingleFlux: 2, DoubleFlux: 1, Benign: 2, Broken: 1,
		GeoDNS: -1, Pools: -1, Migrations: -1, SlowFlux: -1, NarrowFlux: -1,
		BigCDNs: -1, SharedHosting: -1, LoadBalancers: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	db, vantages := seedWorld(t, w)
	dir := t.TempDir()
	asn := filepath.Join(dir, "asn.tsv")
	f, _ := os.Create(asn)
	w.WriteASNTable(f)
	f.Close()
	// Six rounds three simulated minutes apart.
	args := append([]string{"crawl", "--db", db, "--qps", "0", "--rounds", "6", "--interval", "600ms", "--log-level", "warn",
		"--parent-port", strconv.Itoa(w.ParentPort())}, vantages...)
	if _, stderr, err := fw(t, "", args...); err != nil {
		t.Fatalf("crawl: %v\n%s", err, stderr)
	}
	if _, stderr, err := fw(t, "", "classify", "--db", db, "--asn-db", asn); err != nil {
		t.Fatalf("classify: %v\n%s", err, stderr)
	}
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	var listed []string
	benign := ""
	classify.Each(store, false, func(v classify.Verdict) error {
		counts[v.Verdict]++
		if v.Listed() {
			listed = append(listed, v.Domain)
		}
		if v.Verdict == classify.Benign {
			benign = v.Domain
		}
		return nil
	})
	st, _ := store.Stats()
	store.Close()
	if counts[classify.SingleFlux] == 0 || benign == "" {
		t.Fatalf("the crawl gave no single-flux or no benign verdict: %v", counts)
	}

	out := filepath.Join(dir, "report.html")
	stdout, stderr, err := fw(t, "", "report", "--db", db, "--asn-db", asn, "--out", out, "--domain", strings.ToUpper(benign)+".")
	if err != nil || !strings.Contains(stdout, out) {
		t.Fatalf("report: %v\n%s%s", err, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if m := outsideRef.Find(b); m != nil {
		t.Errorf("the report refers outside itself: %q", m)
	}
	if !strings.Contains(string(b), "<style>") {
		t.Error("the report carries no inline style")
	}
	doc, err := html.Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Every listed domain, and the one asked for, has its chart drawn.
	sections := reportSections(t, doc)
	for _, d := range append(listed, benign) {
		if sections[d] <= 0 {
			t.Errorf("%s: timeline with %d marks in the report", d, sections[d])
		}
	}
	if len(sections) != len(listed)+1 {
		t.Errorf("%d domain sections; want %d listed and 1 asked for", len(sections), len(listed))
	}
	// The verdict counts and the summary are the database's.
	got := map[string]string{}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "tr" && htmlAttr(n, "data-verdict") != "" {
			for c := range n.Descendants() {
				if c.Type == html.ElementNode && c.Data == "td" {
					got[htmlAttr(n, "data-verdict")] = c.FirstChild.Data
				}
			}
		}
		if n.Type == html.ElementNode && n.Data == "dd" && htmlAttr(n, "data-key") != "" {
			got["summary:"+htmlAttr(n, "data-key")] = n.FirstChild.Data
		}
	}
	for _, v := range []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign, classify.InsufficientData, classify.Unresolvable} {
		if got[v] != strconv.Itoa(counts[v]) {
			t.Errorf("report counts %s %q; the database %d", v, got[v], counts[v])
		}
	}
	if got["listed"] != strconv.Itoa(len(listed)) || got["summary:probes"] != strconv.Itoa(st.Probes) ||
		!strings.HasPrefix(got["summary:vantages"], strconv.Itoa(len(vantages)/2)+":") {
		t.Errorf("report summary %v; want %d listed, %d probes, %d vantages", got, len(listed), st.Probes, len(vantages)/2)
	}

	// --max-domains caps the charts and says so.
	if _, _, err := fw(t, "", "report", "--db", db, "--out", out, "--max-domains", "1"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(out)
	doc, _ = html.Parse(strings.NewReader(string(b)))
	if n := len(reportSections(t, doc)); n != 1 || !strings.Contains(string(b), strconv.Itoa(len(listed)-1)+" more listed domains are not charted") {
		t.Errorf("--max-domains 1: %d sections", n)
	}

	for _, c := range []struct {
		args []string
		want error
	}{
		{[]string{"--db", db}, errUsage},
		{[]string{"--db", db, "--out", out, "--domain", "bad name"}, errUsage},
		{[]string{"--db", db, "--out", out, "--max-domains", "0"}, errUsage},
		{[]string{"--db", db, "--out", out, "--domain", "never-seeded.example"}, web.ErrUnknownDomain},
	} {
		if _, _, err := fw(t, "", append([]string{"report"}, c.args...)...); !errors.Is(err, c.want) {
			t.Errorf("report %v: %v; want %v", c.args, err, c.want)
		}
	}
}
