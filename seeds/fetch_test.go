package seeds_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/seeds"
)

const listText = "# a feed\nevil.example\nbad..name\nhxxps://flux[.]example/login\nevil.example\n"

// feedServer serves one seed list at /list.txt with an ETag and a
// Last-Modified, answering conditional requests with 304, and records the
// conditional headers of every request.
type feedServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     string
	etag     string // "" sends none
	modified time.Time
	asked    []string // "If-None-Match|If-Modified-Since" of every request
}

func newFeedServer(t *testing.T, body string) *feedServer {
	t.Helper()
	f := &feedServer{body: body, etag: `"v1"`, modified: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.asked = append(f.asked, r.Header.Get("If-None-Match")+"|"+r.Header.Get("If-Modified-Since"))
		if r.URL.Path != "/list.txt" {
			http.NotFound(w, r)
			return
		}
		if f.etag != "" {
			w.Header().Set("ETag", f.etag)
		}
		// ServeContent answers If-None-Match, and If-Modified-Since without it.
		http.ServeContent(w, r, "list.txt", f.modified, strings.NewReader(f.body))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *feedServer) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

func (f *feedServer) change(body, etag string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body, f.etag, f.modified = body, etag, f.modified.Add(time.Hour)
}

func rejectTexts(rs []seeds.Reject) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Error())
	}
	return out
}

func TestFetchConditional(t *testing.T) {
	srv := newFeedServer(t, listText)
	var f seeds.Fetcher
	list := seeds.URLList{URL: srv.URL + "/list.txt"}
	got, err := f.Fetch(t.Context(), list, seeds.Validators{})
	if err != nil {
		t.Fatal(err)
	}
	modified := "Fri, 27 Nov 2026 09:00:00 GMT"
	if want := []string{"evil.example", "flux.example"}; got.NotModified || !slices.Equal(got.Names, want) {
		t.Errorf("names %q (not modified: %v); want %q", got.Names, got.NotModified, want)
	}
	if want := []string{list.URL + ":3: empty label"}; !slices.Equal(rejectTexts(got.Rejects), want) {
		t.Errorf("rejects %q; want %q", rejectTexts(got.Rejects), want)
	}
	if want := (seeds.Validators{ETag: `"v1"`, LastModified: modified}); got.Validators != want {
		t.Errorf("validators %+v; want %+v", got.Validators, want)
	}

	again, err := f.Fetch(t.Context(), list, got.Validators)
	if err != nil || !again.NotModified || again.Names != nil || again.Validators != got.Validators {
		t.Errorf("second fetch: %+v, %v; want not modified", again, err)
	}
	// Last-Modified alone.
	if again, err = f.Fetch(t.Context(), list, seeds.Validators{LastModified: modified}); err != nil || !again.NotModified {
		t.Errorf("fetch with If-Modified-Since: %+v, %v; want not modified", again, err)
	}
	srv.change("new.example\n", `"v2"`)
	if again, err = f.Fetch(t.Context(), list, got.Validators); err != nil || again.NotModified ||
		!slices.Equal(again.Names, []string{"new.example"}) || again.Validators.ETag != `"v2"` {
		t.Errorf("fetch of a changed list: %+v, %v", again, err)
	}
	want := []string{"|", `"v1"|` + modified, "|" + modified, `"v1"|` + modified}
	if got := srv.requests(); !slices.Equal(got, want) {
		t.Errorf("conditional headers %q; want %q", got, want)
	}
}

func TestFetchSizeLimit(t *testing.T) {
	big := strings.Repeat("evil.example\n", 100) // 1300 bytes
	srv := newFeedServer(t, big)
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(big[:700])) // no Content-Length: streamed in chunks
		w.(http.Flusher).Flush()
		w.Write([]byte(big[700:]))
	}))
	defer chunked.Close()
	f := seeds.Fetcher{MaxBytes: 1000}
	for _, u := range []string{srv.URL + "/list.txt", chunked.URL + "/feed"} {
		_, err := f.Fetch(t.Context(), seeds.URLList{URL: u}, seeds.Validators{})
		if !errors.Is(err, seeds.ErrTooLarge) || !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), "limit of 1000 bytes") {
			t.Errorf("%s: %v; want an error naming the URL and the limit", u, err)
		}
	}
	// At the limit exactly, it reads.
	f.MaxBytes = int64(len(big))
	if got, err := f.Fetch(t.Context(), seeds.URLList{URL: chunked.URL}, seeds.Validators{}); err != nil || len(got.Names) != 1 {
		t.Errorf("a list of exactly the limit: %+v, %v", got, err)
	}
}

func TestFetchErrors(t *testing.T) {
	srv := newFeedServer(t, "domain,rank\nevil.example,1\n")
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	f := seeds.Fetcher{Timeout: 200 * time.Millisecond}
	for _, c := range []struct {
		list seeds.URLList
		prev seeds.Validators
		want string
	}{
		{seeds.URLList{URL: srv.URL + "/missing.txt"}, seeds.Validators{}, "fetching seeds " + srv.URL + "/missing.txt: 404 Not Found"},
		{seeds.URLList{URL: srv.URL + "/list.txt", Column: "host"}, seeds.Validators{}, `column "host" not found in CSV header`},
		{seeds.URLList{URL: "ftp://127.0.0.1/list.txt"}, seeds.Validators{}, `"ftp://127.0.0.1/list.txt" is not an http or https URL`},
		{seeds.URLList{URL: "file:///etc/hosts"}, seeds.Validators{}, "is not an http or https URL"},
		{seeds.URLList{URL: "http://user:secret@" + strings.TrimPrefix(slow.URL, "http://") + "/feed"}, seeds.Validators{}, "deadline exceeded"},
	} {
		_, err := f.Fetch(t.Context(), c.list, c.prev)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v; want %q", c.list.URL, err, c.want)
		}
	}
	// A password in the URL does not reach the reject messages.
	u := "http://user:secret@" + strings.TrimPrefix(srv.URL, "http://") + "/list.txt"
	srv.change("bad..name\n", `"v3"`)
	got, err := f.Fetch(t.Context(), seeds.URLList{URL: u}, seeds.Validators{})
	if err != nil || len(got.Rejects) != 1 || strings.Contains(got.Rejects[0].Error(), "secret") ||
		got.Rejects[0].Error() != "http://user:xxxxx@"+strings.TrimPrefix(srv.URL, "http://")+"/list.txt:1: empty label" {
		t.Errorf("rejects %q, %v", rejectTexts(got.Rejects), err)
	}
}

// Poll remembers what it imported: the next poll is conditional, a list
// whose import failed or whose column changed is fetched whole again, and
// a list that fails keeps what was remembered.
func TestPollRemembersValidators(t *testing.T) {
	srv := newFeedServer(t, listText)
	csvSrv := newFeedServer(t, "rank,host\n1,csv.example\n")
	state := filepath.Join(t.TempDir(), "fw.db.seedurls.json")
	var f seeds.Fetcher
	lists := []seeds.URLList{{URL: srv.URL + "/list.txt", Source: "feed"}, {URL: csvSrv.URL + "/list.txt", Column: "host"}}
	var added []string
	failAdd := ""
	add := func(l seeds.URLList, got seeds.Fetched) error {
		if l.URL == failAdd {
			return fmt.Errorf("store full")
		}
		added = append(added, l.Tag()+" "+strconv.FormatBool(got.NotModified)+" "+strings.Join(got.Names, ","))
		return nil
	}
	poll := func() error {
		added = nil
		return f.Poll(t.Context(), lists, state, add)
	}
	if err := poll(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"feed false evil.example,flux.example", csvSrv.URL + "/list.txt false csv.example"}; !slices.Equal(added, want) {
		t.Errorf("first poll added %q; want %q", added, want)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	if err := poll(); err != nil || !slices.Equal(added, []string{"feed true ", csvSrv.URL + "/list.txt true "}) {
		t.Errorf("second poll: %q, %v; want both not modified", added, err)
	}

	// The import of a changed list fails: it is fetched whole next time.
	srv.change("new.example\n", `"v2"`)
	failAdd = lists[0].URL
	if err := poll(); err == nil || !strings.Contains(err.Error(), "store full") {
		t.Errorf("poll with a failing import: %v", err)
	}
	failAdd = ""
	if err := poll(); err != nil || added[0] != "feed false new.example" {
		t.Errorf("poll after a failed import: %q, %v", added, err)
	}
	// Another column: fetched whole, not conditionally.
	lists[1].Column = "HOST"
	if err := poll(); err != nil || added[1] != csvSrv.URL+"/list.txt false csv.example" {
		t.Errorf("poll with another column: %q, %v", added, err)
	}
	// A list that fails to fetch keeps what was remembered of it.
	csvSrv.Close()
	if err := poll(); err == nil || len(added) != 1 {
		t.Errorf("poll with a list down: %q, %v", added, err)
	}
	st, err := seeds.LoadURLState(state)
	if err != nil || st[lists[1].URL].ETag != `"v1"` || st[lists[0].URL].ETag != `"v2"` || st[lists[0].URL].Source != "feed" {
		t.Errorf("state %+v, %v", st, err)
	}
	// A list no longer polled is forgotten; a state file that does not
	// read is replaced.
	lists = lists[:1]
	os.WriteFile(state, []byte("{not json"), 0o600)
	if err := poll(); err == nil || !strings.Contains(err.Error(), "seed URL state") || added[0] != "feed false new.example" {
		t.Errorf("poll over a broken state: %q, %v", added, err)
	}
	if st, err := seeds.LoadURLState(state); err != nil || len(st) != 1 {
		t.Errorf("state %+v, %v", st, err)
	}
	var cancelled context.Context
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.Poll(cancelled, lists, state, add); !errors.Is(err, context.Canceled) {
		t.Errorf("poll after cancel: %v", err)
	}
}
