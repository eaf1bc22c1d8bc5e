package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
	"github.com/fluxwatch/fluxwatch/web"
)

// get serves one request through h.
func get(t *testing.T, h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// page parses an HTML response that must have the status want.
func page(t *testing.T, rec *httptest.ResponseRecorder, want int) *html.Node {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status %d, want %d:\n%s", rec.Code, want, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q", ct)
	}
	doc, err := html.Parse(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// findAll returns the elements under n that match.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func byID(n *html.Node, id string) *html.Node {
	if els := findAll(n, func(e *html.Node) bool { return attr(e, "id") == id }); len(els) == 1 {
		return els[0]
	}
	return nil
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// tableDomains returns the data-domain of the rows of the table with id.
func tableDomains(t *testing.T, doc *html.Node, id string) []string {
	t.Helper()
	table := byID(doc, id)
	if table == nil {
		return nil
	}
	var out []string
	for _, tr := range findAll(table, func(e *html.Node) bool { return e.Data == "tr" && attr(e, "data-domain") != "" }) {
		out = append(out, attr(tr, "data-domain"))
	}
	return out
}

func sortedKeys[V any](m map[string]V, keep func(V) bool) []string {
	var out []string
	for k, v := range m {
		if keep(v) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func TestWebIndexListsAndFiltersDomains(t *testing.T) {
	w := crawledWorld(t)
	h := web.New(w.store, w.meta, web.Options{})
	all := sortedKeys(w.verdicts, func(classify.Verdict) bool { return true })
	if got := tableDomains(t, page(t, get(t, h, "/?n=500"), 200), "domains"); !slices.Equal(got, all) {
		t.Fatalf("index lists %v; want every classified domain %v", got, all)
	}
	for _, c := range []struct {
		query string
		want  func(classify.Verdict) bool
	}{
		{"verdict=single-flux", func(v classify.Verdict) bool { return v.Verdict == classify.SingleFlux }},
		{"verdict=double-flux", func(v classify.Verdict) bool { return v.Verdict == classify.DoubleFlux }},
		{"verdict=flux", func(v classify.Verdict) bool { return classify.IsFlux(v.Verdict) }},
		{"verdict=benign", func(v classify.Verdict) bool { return v.Verdict == classify.Benign }},
		{"verdict=listed", func(v classify.Verdict) bool { return v.Listing != nil }},
		{"q=" + url.QueryEscape(strings.ToUpper(w.single[1:5])), func(v classify.Verdict) bool { return strings.Contains(v.Domain, w.single[1:5]) }},
		{"q=" + w.double[:4] + "&verdict=double-flux", func(v classify.Verdict) bool {
			return v.Verdict == classify.DoubleFlux && strings.Contains(v.Domain, w.double[:4])
		}},
		{"q=no-such-name", func(classify.Verdict) bool { return false }},
	} {
		want := sortedKeys(w.verdicts, c.want)
		got := tableDomains(t, page(t, get(t, h, "/?n=500&"+c.query), 200), "domains")
		if !slices.Equal(got, want) {
			t.Errorf("%s: index lists %v; want %v", c.query, got, want)
		}
		if len(want) == len(all) && c.query != "" {
			t.Errorf("%s: the filter keeps every domain: the test proves nothing", c.query)
		}
		var js struct {
			Rows []struct {
				Domain  string `json:"domain"`
				Verdict string `json:"verdict"`
			} `json:"rows"`
		}
		rec := get(t, h, "/?n=500&format=json&"+c.query)
		if err := json.Unmarshal(rec.Body.Bytes(), &js); err != nil {
			t.Fatalf("%s as JSON: %v", c.query, err)
		}
		var names []string
		for _, r := range js.Rows {
			names = append(names, r.Domain)
			if r.Verdict != w.verdicts[r.Domain].Verdict {
				t.Errorf("JSON row of %s says %s; the store says %s", r.Domain, r.Verdict, w.verdicts[r.Domain].Verdict)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s as JSON: %v; want %v", c.query, names, want)
		}
	}
	for _, bad := range []string{"verdict=evil", "n=0", "n=100000", "q=" + strings.Repeat("a", 300)} {
		if rec := get(t, h, "/?"+bad); rec.Code != http.StatusBadRequest {
			t.Errorf("/?%s: status %d; want 400", bad, rec.Code)
		}
	}
}

func TestWebIndexPaginates(t *testing.T) {
	w := crawledWorld(t)
	h := web.New(w.store, w.meta, web.Options{PageSize: 3})
	all := sortedKeys(w.verdicts, func(classify.Verdict) bool { return true })
	// Forward through the next links, then back through the previous ones.
	link := func(doc *html.Node, rel string) string {
		if as := findAll(doc, func(e *html.Node) bool { return e.Data == "a" && attr(e, "rel") == rel }); len(as) == 1 {
			return attr(as[0], "href")
		}
		return ""
	}
	var pages [][]string
	var seen []string
	target := "/"
	var doc *html.Node
	for target != "" && len(pages) <= len(all) {
		doc = page(t, get(t, h, target), 200)
		rows := tableDomains(t, doc, "domains")
		if len(rows) == 0 || len(rows) > 3 {
			t.Fatalf("%s: %d rows on a page of 3", target, len(rows))
		}
		pages = append(pages, rows)
		seen = append(seen, rows...)
		target = link(doc, "next")
	}
	if !slices.Equal(seen, all) {
		t.Fatalf("paging forward lists %v; want %v", seen, all)
	}
	for i := len(pages) - 2; i >= 0; i-- {
		prev := link(doc, "prev")
		if prev == "" {
			t.Fatalf("page %d has no previous link", i+2)
		}
		doc = page(t, get(t, h, prev), 200)
		if got := tableDomains(t, doc, "domains"); !slices.Equal(got, pages[i]) {
			t.Fatalf("back to page %d: %v; want %v", i+1, got, pages[i])
		}
	}
	if link(doc, "prev") != "" {
		t.Error("the first page has a previous link")
	}
}

// timelineOf checks a domain page's timeline chart and returns its marks.
func timelineOf(t *testing.T, doc *html.Node, id string) (svg *html.Node, marks int) {
	t.Helper()
	svg = byID(doc, id)
	if svg == nil || svg.Data != "svg" {
		t.Fatalf("no <svg id=%q>", id)
	}
	marks = len(findAll(svg, func(e *html.Node) bool { return e.Data == "rect" && hasClass(e, "m") }))
	if n, err := strconv.Atoi(attr(svg, "data-points")); err != nil || n != marks {
		t.Errorf("#%s: data-points=%q but %d marks drawn", id, attr(svg, "data-points"), marks)
	}
	return svg, marks
}

func TestWebDomainPageDrawsTimeline(t *testing.T) {
	w := crawledWorld(t)
	h := web.New(w.store, w.meta, web.Options{})
	for _, name := range []string{w.single, w.double} {
		v := w.verdicts[name]
		doc := page(t, get(t, h, "/domain/"+name), 200)
		svg, marks := timelineOf(t, doc, "timeline")
		// Every address the vantages saw is drawn at least once (at most
		// eight per cell, and flux answers hold fewer).
		if marks < v.Features.Addresses {
			t.Errorf("%s: %d marks for %d addresses", name, marks, v.Features.Addresses)
		}
		if got := attr(svg, "data-vantages"); got != strconv.Itoa(len(w.vantages)) {
			t.Errorf("%s: %s vantage bands; want %d", name, got, len(w.vantages))
		}
		for _, vantage := range w.vantages {
			if len(findAll(svg, func(e *html.Node) bool {
				return e.Data == "text" && e.FirstChild != nil && e.FirstChild.Data == vantage
			})) != 1 {
				t.Errorf("%s: no band labelled %s", name, vantage)
			}
		}
		counts := byID(doc, "counts")
		if counts == nil || attr(counts, "data-points") == "0" {
			t.Errorf("%s: no counts chart", name)
		}
		body := get(t, h, "/domain/"+name).Body.String()
		for _, want := range []string{html.EscapeString(v.Evidence), v.Listing.FirstListed.UTC().Format("2006-01-02 15:04:05Z"), ">listed<"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: page lacks %q", name, want)
			}
		}
	}
	// The double-flux domain's name servers and their rotating addresses.
	doc := page(t, get(t, h, "/domain/"+w.double), 200)
	ns, marks := timelineOf(t, doc, "ns")
	if hosts, _ := strconv.Atoi(attr(ns, "data-hosts")); marks == 0 || hosts < 2 {
		t.Errorf("%s: NS chart with %d name servers and %d marks", w.double, hosts, marks)
	}
}

func TestWebDomainJSON(t *testing.T) {
	w := crawledWorld(t)
	h := web.New(w.store, w.meta, web.Options{})
	rec := get(t, h, "/domain/"+w.single+"?format=json&span=all")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got struct {
		Verdict    classify.Verdict        `json:"verdict"`
		Listed     bool                    `json:"listed"`
		ListingLog []classify.ListingEvent `json:"listing_log"`
		Timeline   struct {
			Probes   int      `json:"probes"`
			Vantages []string `json:"vantages"`
			Columns  []struct {
				Addresses int `json:"addresses"`
				Vantages  []struct {
					Addresses []string `json:"addresses"`
				} `json:"vantages"`
			} `json:"columns"`
		} `json:"timeline"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	probes := 0
	w.store.History(w.single, time.Time{}, time.Time{}, func(obs.Probe) error { probes++; return nil })
	if got.Verdict.Verdict != classify.SingleFlux || !got.Listed || len(got.ListingLog) == 0 || got.ListingLog[0].Event != classify.EventListed {
		t.Errorf("verdict %s, listed %v, log %v", got.Verdict.Verdict, got.Listed, got.ListingLog)
	}
	if got.Timeline.Probes != probes || len(got.Timeline.Columns) != 6 {
		t.Errorf("timeline of %d probes in %d columns; the store holds %d probes in 6 rounds", got.Timeline.Probes, len(got.Timeline.Columns), probes)
	}
	for i, c := range got.Timeline.Columns {
		if c.Addresses == 0 || len(c.Vantages) != len(w.vantages) || len(c.Vantages[0].Addresses) == 0 {
			t.Errorf("column %d: %+v", i, c)
		}
	}
}

func TestWebRejectsBadAndUnknownNames(t *testing.T) {
	w := crawledWorld(t)
	h := web.New(w.store, w.meta, web.Options{})
	for target, want := range map[string]int{
		"/domain/unknown-domain.example":            http.StatusNotFound,
		"/domain/" + url.PathEscape("<script>x.io"): http.StatusBadRequest,
		"/domain/a..b": http.StatusBadRequest,
		"/domain/" + strings.Repeat("a", 64) + ".example": http.StatusBadRequest,
		"/domain/a%20b.example":                           http.StatusBadRequest,
		"/domain/" + w.single + "?span=forever":           http.StatusBadRequest,
		"/domain/" + strings.ToUpper(w.single):            http.StatusMovedPermanently,
		"/nowhere":                                        http.StatusNotFound,
	} {
		rec := get(t, h, target)
		if rec.Code != want {
			t.Errorf("%s: status %d; want %d", target, rec.Code, want)
		}
		if strings.Contains(rec.Body.String(), "<script>") {
			t.Errorf("%s: the answer echoes <script>", target)
		}
	}
	if loc := get(t, h, "/domain/"+strings.ToUpper(w.single)).Header().Get("Location"); loc != "/domain/"+w.single {
		t.Errorf("redirect to %q", loc)
	}
	// Read-only: every other method is refused.
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/domain/"+w.single, strings.NewReader("x")))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d; want 405", m, rec.Code)
		}
	}
}

func TestWebBlocklistServesExports(t *testing.T) {
	w := crawledWorld(t)
	dir := t.TempDir()
	list := filepath.Join(dir, "blocklist.txt")
	listed := sortedKeys(w.verdicts, func(v classify.Verdict) bool { return v.Listing != nil })
	if err := os.WriteFile(list, []byte(strings.Join(listed, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := web.New(w.store, w.meta, web.Options{Exports: []web.Export{
		{Format: "domains", Path: list},
		{Format: "rpz", Path: filepath.Join(dir, "not-yet.rpz")},
	}})
	doc := page(t, get(t, h, "/blocklist"), 200)
	if got := tableDomains(t, doc, "listed"); !slices.Equal(got, listed) {
		t.Errorf("blocklist shows %v; want %v", got, listed)
	}
	if c := byID(doc, "listed-count"); c == nil || c.FirstChild.Data != strconv.Itoa(len(listed)) {
		t.Errorf("listed count missing or wrong")
	}
	if links := findAll(doc, func(e *html.Node) bool { return e.Data == "a" && attr(e, "href") == "/files/blocklist.txt" }); len(links) != 1 {
		t.Errorf("no download link to /files/blocklist.txt")
	}

	rec := get(t, h, "/files/blocklist.txt")
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || rec.Body.String() != strings.Join(listed, "\n")+"\n" || etag == "" || rec.Header().Get("Last-Modified") == "" {
		t.Fatalf("file: status %d, ETag %q, Last-Modified %q, body %q", rec.Code, etag, rec.Header().Get("Last-Modified"), rec.Body.String())
	}
	if rec := get(t, h, "/files/blocklist.txt", "If-None-Match", etag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("If-None-Match the current ETag: status %d", rec.Code)
	}
	if rec := get(t, h, "/files/blocklist.txt", "If-Modified-Since", rec.Header().Get("Last-Modified")); rec.Code != http.StatusNotModified {
		t.Errorf("If-Modified-Since the file's time: status %d", rec.Code)
	}
	// A new publish (written elsewhere, renamed over) is a new version.
	tmp := filepath.Join(dir, ".new")
	os.WriteFile(tmp, []byte("changed.example\n"), 0o644)
	os.Chtimes(tmp, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if err := os.Rename(tmp, list); err != nil {
		t.Fatal(err)
	}
	rec = get(t, h, "/files/blocklist.txt", "If-None-Match", etag)
	if rec.Code != 200 || rec.Header().Get("ETag") == etag || rec.Body.String() != "changed.example\n" {
		t.Errorf("after a new publish: status %d, ETag %q (was %q)", rec.Code, rec.Header().Get("ETag"), etag)
	}
	for _, target := range []string{"/files/not-yet.rpz", "/files/passwd", "/files/..%2f..%2fetc%2fpasswd"} {
		if rec := get(t, h, target); rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d; want 404", target, rec.Code)
		}
	}
	// JSON, cheaply.
	var js struct {
		Listed int `json:"listed"`
		Files  []struct {
			Name    string `json:"name"`
			Missing bool   `json:"missing"`
		} `json:"files"`
	}
	if err := json.Unmarshal(get(t, h, "/blocklist?format=json").Body.Bytes(), &js); err != nil || js.Listed != len(listed) ||
		len(js.Files) != 2 || js.Files[0].Missing || !js.Files[1].Missing {
		t.Errorf("blocklist JSON: %+v, %v", js, err)
	}
}

// The blocklist page's publishes say which one the daemon made at its
// start, of the list as stored.
func TestWebBlocklistMarksTheStartPublish(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "fw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if _, err := store.RecordPublishOf(now, storage.PublishStart); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RecordPublish(now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	doc := page(t, get(t, web.New(store, nil, web.Options{}), "/blocklist"), 200)
	var rows []string
	for _, tbl := range findAll(doc, func(e *html.Node) bool { return e.Data == "table" && hasClass(e, "publishes") }) {
		for _, tr := range findAll(tbl, func(e *html.Node) bool { return e.Data == "tr" }) {
			var b strings.Builder
			for n := range tr.Descendants() {
				if n.Type == html.TextNode {
					b.WriteString(n.Data)
				}
			}
			rows = append(rows, b.String())
		}
	}
	// The header, then the newest first.
	if len(rows) != 3 || strings.Contains(rows[1], "daemon start") || !strings.Contains(rows[2], "(daemon start)") {
		t.Fatalf("publishes table rows %q; want the older one marked as the daemon's start", rows)
	}
}
