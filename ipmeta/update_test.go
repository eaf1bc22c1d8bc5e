package ipmeta

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tableServer serves testdata's samples of ip-location-db's tables under
// /PACKAGE/FILE, with some files replaced.
type tableServer struct {
	mu       sync.Mutex
	override map[string]string // path -> body
	status   map[string]int
}

func (s *tableServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body, ok := s.override[r.URL.Path]
	code := s.status[r.URL.Path]
	s.mu.Unlock()
	if code != 0 {
		http.Error(w, "no", code)
		return
	}
	if !ok {
		b, err := os.ReadFile(filepath.Join("testdata", filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		body = string(b)
	}
	w.Write([]byte(body))
}

func (s *tableServer) set(path, body string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.override, s.status = map[string]string{}, map[string]int{}
	if body != "" {
		s.override[path] = body
	}
	if code != 0 {
		s.status[path] = code
	}
}

// An update fetches the four tables from a (local) source, checks them and
// makes them current; lookups then work from the directory. A corrupt, cut
// or failed download leaves the tables in use as they were.
func TestUpdateSwapsInCheckedTables(t *testing.T) {
	srv := &tableServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	dir := filepath.Join(t.TempDir(), "ipdb")
	var db DB
	if _, err := db.LoadDir(dir); !errors.Is(err, ErrNoTables) {
		t.Fatalf("LoadDir of an empty directory: %v; want ErrNoTables", err)
	}
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	opts := UpdateOptions{Dir: dir, Source: hs.URL, Client: hs.Client(), Now: func() time.Time { return day }}
	m, err := Update(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 4 || !m.Updated.Equal(day) || m.Source != hs.URL+"/" {
		t.Fatalf("manifest %+v", m)
	}
	// lookup loads the current set and checks it is the one of when.
	lookup := func(when time.Time) (uint32, string) {
		t.Helper()
		var db DB
		got, err := db.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Updated.Equal(when) {
			t.Fatalf("loaded the set of %v; want the one of %v", got.Updated, when)
		}
		info, _ := db.Lookup(netip.MustParseAddr("1.0.0.1"))
		return info.ASN, info.Country
	}
	if asn, cc := lookup(day); asn != 13335 || cc != "AU" {
		t.Fatalf("1.0.0.1 in AS%d %s; want AS13335 AU", asn, cc)
	}

	// Each bad download fails the update and leaves the current set.
	for _, c := range []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"garbage", "/asn/asn-ipv4.csv", "<html>rate limited</html>\n", 0, "does not parse"},
		{"cut short", "/asn-country/asn-country-ipv4.csv", "1.0.0.0,1.0.0.255,AU\n", 0, "under half"},
		{"cut mid-line", "/asn/asn-ipv6.csv", "2001:200::,2001:200:ff", 0, "does not parse"},
		{"not found", "/asn-country/asn-country-ipv6.csv", "", http.StatusNotFound, "404"},
	} {
		srv.set(c.path, c.body, c.code)
		opts.Now = func() time.Time { return day.Add(24 * time.Hour) }
		if _, err := Update(context.Background(), opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: update error %v; want one that says %q", c.name, err, c.want)
		}
		if now, err := ReadManifest(dir); err != nil || !now.Updated.Equal(day) {
			t.Fatalf("%s: tables in use changed: %+v, %v", c.name, now, err)
		}
		if asn, cc := lookup(day); asn != 13335 || cc != "AU" {
			t.Fatalf("%s: lookups changed", c.name)
		}
	}
	// Nothing half-written is left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".update-") {
			t.Fatalf("left %s behind", e.Name())
		}
	}
	// A good update replaces the set; the one before it is kept, older ones go.
	srv.set("", "", 0)
	for i := 2; i <= 3; i++ {
		opts.Now = func() time.Time { return day.Add(time.Duration(i) * 24 * time.Hour) }
		if _, err := Update(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
	}
	lookup(day.Add(72 * time.Hour))
	var sets int
	entries, _ = os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "tables-") {
			sets++
		}
	}
	if sets != 2 {
		t.Fatalf("%d sets kept; want the current one and the one before", sets)
	}
}
