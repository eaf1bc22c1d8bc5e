package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/storage"
)

// listedRow is one domain of the blocklist page.
type listedRow struct {
	Domain        string    `json:"domain"`
	Verdict       string    `json:"verdict"`
	Score         float64   `json:"score"`
	Confidence    float64   `json:"confidence"`
	FirstListed   time.Time `json:"first_listed,omitzero"`
	LastConfirmed time.Time `json:"last_confirmed,omitzero"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
}

// fileInfo is a served export as the blocklist page shows it.
type fileInfo struct {
	Name     string    `json:"name"`
	Format   string    `json:"format"`
	URL      string    `json:"url"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified,omitzero"`
	Missing  bool      `json:"missing,omitempty"` // not published yet
}

// blocklistPage is the data of the blocklist page.
type blocklistPage struct {
	Query      listQuery
	Listed     int
	Rows       []listedRow
	Next, Prev string
	First      string
	Files      []fileInfo
	Publishes  []storage.PublishRecord
}

// recentPublishes is how many publish records the blocklist page shows.
const recentPublishes = 10

func (s *server) blocklist(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r, s.opts.PageSize)
	if err != nil || q.Verdict != "" {
		if err == nil {
			err = errors.New("the blocklist takes no verdict filter")
		}
		s.httpError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p := blocklistPage{Query: q}
	// Counting reads keys only: cheap even for a long list.
	if err := s.store.Listed(func(string, []byte) error { p.Listed++; return nil }); err != nil {
		s.fail(w, r, err)
		return
	}
	names, more, err := scanPage(s.store.Listed, func(name string, _ []byte) (bool, error) {
		return q.Q == "" || strings.Contains(name, q.Q), nil
	}, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	listed, _, err := s.store.ListingState(names)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, name := range names {
		rec, ok := listed[name]
		if !ok {
			continue // expired between the scan and now
		}
		var v classify.Verdict
		if err := json.Unmarshal(rec, &v); err != nil {
			s.fail(w, r, fmt.Errorf("listed record of %s: %w", name, err))
			return
		}
		row := listedRow{Domain: name, Verdict: v.Verdict, Score: v.Score, Confidence: v.Confidence}
		if v.Listing != nil {
			row.FirstListed, row.LastConfirmed, row.ExpiresAt = v.Listing.FirstListed, v.Listing.LastConfirmed, v.Listing.ExpiresAt
		}
		p.Rows = append(p.Rows, row)
	}
	p.Next, p.Prev, p.First = pageLinks("/blocklist", q, names, more)
	for _, f := range s.fileList {
		fi := fileInfo{Name: f.Name, Format: f.Format, URL: "/files/" + f.Name}
		if st, err := os.Stat(f.Path); err == nil && st.Mode().IsRegular() {
			fi.Size, fi.Modified = st.Size(), st.ModTime().UTC()
		} else {
			fi.Missing = true
		}
		p.Files = append(p.Files, fi)
	}
	if p.Publishes, err = s.store.Publishes(recentPublishes); err != nil {
		s.fail(w, r, err)
		return
	}
	if wantsJSON(r) {
		rows := p.Rows
		if rows == nil {
			rows = []listedRow{}
		}
		files := p.Files
		if files == nil {
			files = []fileInfo{}
		}
		s.writeJSON(w, r, map[string]any{"listed": p.Listed, "rows": rows, "files": files, "next": p.Next, "prev": p.Prev})
		return
	}
	s.render(w, r, http.StatusOK, "blocklist.html", "Blocklist", "blocklist", p)
}

// contentTypes of the export formats; others go by the file's extension.
var contentTypes = map[string]string{
	"jsonl": "application/x-ndjson",
	"csv":   "text/csv; charset=utf-8",
	"stix":  "application/json",
	"misp":  "application/json",
}

// file serves a published export read-only. Its ETag is the file's size
// and modification time (exports are replaced by rename, never written in
// place), so conditional requests get 304 and ranges work.
func (s *server) file(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	e, ok := s.files[name]
	if !ok {
		s.httpError(w, r, http.StatusNotFound, fmt.Sprintf("no published file %q", name))
		return
	}
	f, err := os.Open(e.Path)
	if errors.Is(err, fs.ErrNotExist) {
		s.httpError(w, r, http.StatusNotFound, fmt.Sprintf("%s has not been published yet", name))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		s.fail(w, r, fmt.Errorf("serving %s: not a regular file (%v)", e.Path, err))
		return
	}
	h := w.Header()
	h.Set("ETag", fmt.Sprintf(`"%x-%x"`, st.ModTime().UnixNano(), st.Size()))
	h.Set("Cache-Control", "no-cache")
	if ct, ok := contentTypes[e.Format]; ok {
		h.Set("Content-Type", ct)
	} else if filepath.Ext(name) == "" || filepath.Ext(name) == ".rpz" || filepath.Ext(name) == ".txt" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	http.ServeContent(w, r, name, st.ModTime(), f)
}
