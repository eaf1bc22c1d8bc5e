// Package web is fluxwatch's read-only web view: a searchable table of the
// classified domains, a page per domain with its verdict, evidence, listing,
// flux network and charts of how its answers moved (addresses per vantage
// colored by network, counts of addresses, networks and countries per
// round, and its name servers), the current blocklist with its published
// files, and the flux networks with a picture of each.
//
// Pages are rendered on the server with html/template; the charts are
// inline SVG drawn here, so pages need no script. Every table streams from
// the database a page at a time, so a million domains are never in memory
// at once. Nothing the web view serves changes the database. The same
// charts make up the self-contained HTML report (WriteReport).
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/storage"
)

//go:embed templates/*.html static/style.css
var assets embed.FS

// Export is a published file offered for download on the blocklist page.
type Export struct {
	Format string // the export format: domains, rpz, jsonl, …
	Path   string // where the daemon writes it
}

// Options configure the web view. The zero value works.
type Options struct {
	// Exports are the published files served read-only under /files/.
	Exports []Export
	// PageSize is the number of rows of a table page (default 50, at most
	// 500; the n query parameter chooses another up to that).
	PageSize int
	// Span is how much history a domain page charts by default, back from
	// the last measurement its verdict covers (default 7 days).
	Span time.Duration
	// Logger receives the errors behind 500 responses; nil: slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	DefaultSpan     = 7 * 24 * time.Hour
)

// server is the handler New returns.
type server struct {
	store *storage.Store
	meta  *ipmeta.DB
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
	// files maps the names under /files/ to the export paths.
	files    map[string]Export
	fileList []fileEntry
	css      []byte
	cssETag  string
}

// fileEntry is a served export as the blocklist page lists it.
type fileEntry struct {
	Name, Format, Path string
}

// New returns the web view of store. meta, which may be nil, names the
// networks and countries of the addresses in the charts.
func New(store *storage.Store, meta *ipmeta.DB, opts Options) http.Handler {
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	opts.PageSize = min(opts.PageSize, MaxPageSize)
	if opts.Span <= 0 {
		opts.Span = DefaultSpan
	}
	s := &server{store: store, meta: meta, opts: opts, log: opts.Logger, mux: http.NewServeMux(),
		pages: pages(), files: map[string]Export{}, css: mustAsset("static/style.css")}
	if s.log == nil {
		s.log = slog.Default()
	}
	sum := sha256.Sum256(s.css)
	s.cssETag = `"` + hex.EncodeToString(sum[:8]) + `"`
	for _, e := range opts.Exports {
		name := filepath.Base(e.Path)
		for i := 2; s.files[name] != (Export{}); i++ {
			name = fmt.Sprintf("%d-%s", i, filepath.Base(e.Path))
		}
		s.files[name] = e
		s.fileList = append(s.fileList, fileEntry{Name: name, Format: e.Format, Path: e.Path})
	}
	// GET patterns also answer HEAD; every other method gets 405.
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /domain/{name}", s.domain)
	s.mux.HandleFunc("GET /blocklist", s.blocklist)
	s.mux.HandleFunc("GET /networks", s.networks)
	s.mux.HandleFunc("GET /network/{id}", s.network)
	s.mux.HandleFunc("GET /files/{name}", s.file)
	s.mux.HandleFunc("GET /static/style.css", s.style)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Pages use no script, inline style or outside resource.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

func mustAsset(name string) []byte {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// templateFuncs are the helpers the templates use.
var templateFuncs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"pct": func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) },
	"f2":  func(x float64) string { return fmt.Sprintf("%.2f", x) },
	"f1":  func(x float64) string { return fmt.Sprintf("%.1f", x) },
	"join": func(xs []string) string {
		return strings.Join(xs, ", ")
	},
	"verdictClass": func(v string) string {
		switch {
		case classify.IsFlux(v):
			return "flux"
		case v == classify.Benign:
			return "benign"
		default:
			return "other"
		}
	},
}

// pages are the parsed templates, by file name.
var pages = sync.OnceValue(parsePages)

// parsePages parses each page with the shared layout and partials; the
// report stands alone.
func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	entries, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		name := path.Base(e)
		if name == "layout.html" || name == "partials.html" {
			continue
		}
		files := []string{"templates/layout.html", "templates/partials.html", e}
		if name == "report.html" {
			files = []string{"templates/partials.html", e}
		}
		pages[name] = template.Must(template.New(name).Funcs(templateFuncs).ParseFS(assets, files...))
	}
	return pages
}

// layoutData is what every page's layout shows.
type layoutData struct {
	Title string
	Nav   string // which item of the navigation is current
	Page  any
}

// render executes a page into a buffer first, so that a failing template
// gives a clean 500 instead of half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, page, title, nav string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout", layoutData{Title: title, Nav: nav, Page: data}); err != nil {
		s.fail(w, r, fmt.Errorf("rendering %s: %w", page, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// writeJSON writes v as indented JSON.
func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// errorPage is the body of a 4xx or 5xx page.
type errorPage struct {
	Status  int
	Message string
}

// httpError answers with a status and a message a person can act on.
func (s *server) httpError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	s.render(w, r, status, "error.html", http.StatusText(status), "", errorPage{Status: status, Message: msg})
}

// fail logs err and answers 500 without its details.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("web: request failed", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error; see the daemon's log", http.StatusInternalServerError)
}

func wantsJSON(r *http.Request) bool { return r.URL.Query().Get("format") == "json" }

// errBadName explains what a domain name in a URL may hold.
var errBadName = errors.New("not a domain name: letters, digits, '-' and '_' in dot-separated labels of at most 63 characters, 253 in all")

// normalizeName validates a domain name from a URL or the command line and
// returns it as storage keys it: lower case, no trailing dot.
func normalizeName(name string) (string, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" || len(name) > 253 {
		return "", errBadName
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", errBadName
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", errBadName
			}
		}
	}
	return name, nil
}

// NormalizeName is normalizeName for the command line: fluxwatch report
// checks its --domain arguments with it.
func NormalizeName(name string) (string, error) { return normalizeName(name) }

// style serves the stylesheet.
func (s *server) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("ETag", s.cssETag)
	http.ServeContent(w, r, "style.css", time.Time{}, bytes.NewReader(s.css))
}
