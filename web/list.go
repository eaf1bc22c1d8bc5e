package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
)

// Tables page through the database in name order with a cursor: a page
// after a name (the next page) or before one (the previous page). Each
// request is one pass of a read transaction that keeps at most a page of
// names: the rows' records are read afterwards, one by one.

// errStop ends a store iteration early.
var errStop = errors.New("stop")

// verdictFilters are the values of the index's verdict filter.
var verdictFilters = slices.Concat([]string{"", "flux"}, classify.Verdicts, []string{"listed"})

// listQuery is a table request.
type listQuery struct {
	Q       string // substring of the domain name
	Verdict string // one of verdictFilters
	After   string // the page after this name
	Before  string // the page before this name
	N       int    // rows per page
	JSON    bool   // format=json: links keep it

	defaultN int
}

// parseListQuery reads and checks a table request.
func parseListQuery(r *http.Request, pageSize int) (listQuery, error) {
	v := r.URL.Query()
	q := listQuery{
		Q:       strings.ToLower(strings.TrimSpace(v.Get("q"))),
		Verdict: v.Get("verdict"),
		After:   v.Get("after"),
		Before:  v.Get("before"),
		N:       pageSize,
		JSON:    v.Get("format") == "json",

		defaultN: pageSize,
	}
	if len(q.Q) > 253 || len(q.After) > 253 || len(q.Before) > 253 {
		return q, errors.New("query too long: names have at most 253 characters")
	}
	if !slices.Contains(verdictFilters, q.Verdict) {
		return q, fmt.Errorf("unknown verdict filter %q (want one of %s)", q.Verdict, strings.Join(verdictFilters[1:], ", "))
	}
	if s := v.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			return q, fmt.Errorf("n must be a number from 1 to %d", MaxPageSize)
		}
		q.N = n
	}
	return q, nil
}

// link returns the URL of path with this query moved to another cursor.
func (q listQuery) link(path, after, before string) string {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Verdict != "" {
		v.Set("verdict", q.Verdict)
	}
	if after != "" {
		v.Set("after", after)
	}
	if before != "" {
		v.Set("before", before)
	}
	if q.N != q.defaultN {
		v.Set("n", strconv.Itoa(q.N))
	}
	if q.JSON {
		v.Set("format", "json")
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// source iterates records in name order; storage's Verdicts and Listed.
type source func(fn func(name string, rec []byte) error) error

// scanPage returns the names of one page of matching records and whether
// there are more in the direction it went: after q.After (or from the
// start), or before q.Before.
func scanPage(src source, match func(name string, rec []byte) (bool, error), q listQuery) (names []string, more bool, err error) {
	if q.Before == "" {
		err = src(func(name string, rec []byte) error {
			if q.After != "" && name <= q.After {
				return nil
			}
			ok, err := match(name, rec)
			if err != nil || !ok {
				return err
			}
			if len(names) == q.N {
				more = true
				return errStop
			}
			names = append(names, name)
			return nil
		})
	} else {
		// The last q.N matches before q.Before, in a ring.
		ring := make([]string, 0, q.N)
		next := 0
		err = src(func(name string, rec []byte) error {
			if name >= q.Before {
				return errStop
			}
			ok, err := match(name, rec)
			if err != nil || !ok {
				return err
			}
			if len(ring) < q.N {
				ring = append(ring, name)
				return nil
			}
			ring[next] = name
			next = (next + 1) % q.N
			more = true
			return nil
		})
		names = append(ring[next:], ring[:next]...)
	}
	if errors.Is(err, errStop) {
		err = nil
	}
	return names, more, err
}

// peekVerdict reads the verdict name of a stored verdict without decoding
// the rest of it. The classifier writes it second, after the domain: that
// layout is read directly (a filter over a million verdicts stays fast);
// any other is read token by token.
func peekVerdict(rec []byte) (string, error) {
	if v, ok := verdictAfterDomain(rec); ok {
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(rec))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", fmt.Errorf("stored verdict is not a JSON object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", err
		}
		if key == "verdict" {
			tok, err := dec.Token()
			if err != nil {
				return "", err
			}
			s, _ := tok.(string)
			return s, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", err
		}
	}
	return "", nil
}

// verdictAfterDomain reads {"domain":"NAME","verdict":"VERDICT", where
// neither string holds an escape.
func verdictAfterDomain(rec []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(rec, []byte(`{"domain":"`))
	if !ok {
		return "", false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	if rest, ok = bytes.CutPrefix(rest[end+1:], []byte(`,"verdict":"`)); !ok {
		return "", false
	}
	end = bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	return string(rest[:end]), true
}

// verdictMatcher matches a substring of the name and a verdict filter.
func verdictMatcher(q listQuery) func(name string, rec []byte) (bool, error) {
	return func(name string, rec []byte) (bool, error) {
		if q.Q != "" && !strings.Contains(name, q.Q) {
			return false, nil
		}
		if q.Verdict == "" || q.Verdict == "listed" {
			return true, nil // "listed" reads the listed index, all of it listed
		}
		v, err := peekVerdict(rec)
		if err != nil {
			return false, fmt.Errorf("verdict of %s: %w", name, err)
		}
		if q.Verdict == "flux" {
			return classify.IsFlux(v), nil
		}
		return v == q.Verdict, nil
	}
}

// row is one domain of the index.
type row struct {
	Domain     string    `json:"domain"`
	Verdict    string    `json:"verdict"`
	Score      float64   `json:"score"`
	Confidence float64   `json:"confidence"`
	FirstSeen  time.Time `json:"first_seen,omitzero"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	Listed     bool      `json:"listed"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	Delisted   bool      `json:"delisted,omitempty"`
	Names      int       `json:"names,omitempty"`
	Evidence   string    `json:"evidence"`
	// Dark: no vantage answered its last measurements (storage.DarkAfter
	// or more in a row); it is measured less often until one does.
	Dark bool `json:"dark,omitempty"`
}

// indexPage is the data of the index.
type indexPage struct {
	Query      listQuery
	Rows       []row
	Next, Prev string // links; "" when there is no such page
	First      string
	Filters    []string
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r, s.opts.PageSize)
	if err != nil {
		s.httpError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	src := source(s.store.Verdicts)
	if q.Verdict == "listed" {
		src = s.store.Listed
	}
	names, more, err := scanPage(src, verdictMatcher(q), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rows, err := s.rows(names)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := indexPage{Query: q, Rows: rows, Filters: verdictFilters}
	p.Next, p.Prev, p.First = pageLinks("/", q, names, more)
	if wantsJSON(r) {
		s.writeJSON(w, r, map[string]any{"rows": rows, "next": p.Next, "prev": p.Prev})
		return
	}
	s.render(w, r, http.StatusOK, "index.html", "Domains", "index", p)
}

// pageLinks returns the links to the next, previous and first pages.
func pageLinks(path string, q listQuery, names []string, more bool) (next, prev, first string) {
	if len(names) == 0 {
		if q.After != "" || q.Before != "" {
			first = q.link(path, "", "")
		}
		return
	}
	forward := q.Before == ""
	if !forward || more {
		next = q.link(path, names[len(names)-1], "")
	}
	if (forward && q.After != "") || (!forward && more) {
		prev = q.link(path, "", names[0])
		first = q.link(path, "", "")
	}
	return next, prev, first
}

// rows reads the full verdicts of a page of names.
func (s *server) rows(names []string) ([]row, error) {
	_, delisted, err := s.store.ListingState(names)
	if err != nil {
		return nil, err
	}
	rows := make([]row, 0, len(names))
	for _, name := range names {
		v, err := classify.Load(s.store, name)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue // reclassified away between the scan and now
		}
		rw := row{Domain: name, Verdict: v.Verdict, Score: v.Score, Confidence: v.Confidence,
			FirstSeen: v.Features.FirstSeen, LastSeen: v.Features.LastSeen, Listed: v.Listed(),
			Delisted: delisted[name], Names: v.Names, Evidence: v.Evidence}
		if v.Listed() {
			rw.ExpiresAt = v.Listing.ExpiresAt
		}
		d, ok, err := s.store.Domain(name)
		if err != nil {
			return nil, err
		}
		if ok {
			rw.Dark = d.Active && d.IsDark()
			if rw.FirstSeen.IsZero() {
				rw.FirstSeen = d.FirstSeen // when it was added
			}
		}
		rows = append(rows, rw)
	}
	return rows, nil
}
