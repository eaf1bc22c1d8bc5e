package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The daemon's seeds job fetches daemon.seed_urls: the names of the list
// are added with its source, a bad line is logged as URL:line, and the
// next fetches are conditional (a 304 adds nothing).
func TestDaemonImportsSeedURLs(t *testing.T) {
	var mu sync.Mutex
	var conditional, whole int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Header.Get("If-None-Match") != "" {
			conditional++
		} else {
			whole++
		}
		mu.Unlock()
		w.Header().Set("ETag", `"list-1"`)
		http.ServeContent(w, r, "list.txt", time.Time{}, strings.NewReader("# feed\nevil-one.example\nbad..name\nevil-two.example\n"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`db: %s
resolvers: [127.0.0.1:1]
log_level: debug
daemon:
  crawl: "@every 1h"
  seeds: "@every 1s"
  seed_urls:
    - url: %s/list.txt
      source: test-feed
`, db, srv.URL)), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- execute(ctx, []string{"daemon", "--config", cfgPath}, &stdio{in: strings.NewReader(""), out: &logs, err: &logs})
	}()
	feedWaitForLog(t, &logs, `msg="seeds imported" url=\S+ (added=2)`)
	feedWaitUntil(t, 10*time.Second, "a conditional fetch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return conditional > 0 && strings.Contains(logs.String(), `msg="seeds: list not modified"`)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}
	mu.Lock()
	if whole != 1 {
		t.Errorf("%d whole fetches; want 1, then conditional ones", whole)
	}
	mu.Unlock()
	if !strings.Contains(logs.String(), `err="`+srv.URL+`/list.txt:3: empty label"`) {
		t.Errorf("the bad line is not logged as URL:line:\n%s", logs.String())
	}
	if strings.Count(logs.String(), `msg="seeds imported"`) != 1 {
		t.Errorf("the list was imported more than once:\n%s", logs.String())
	}
	out, _, err := fw(t, "", "seeds", "list", "--db", db)
	if err != nil || strings.Count(out, "sources=test-feed") != 2 || !strings.Contains(out, "evil-one.example") {
		t.Errorf("seeds list: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(db + ".seedurls.json"); err != nil || !strings.Contains(string(b), `"etag": "\"list-1\""`) {
		t.Errorf("state file: %v\n%s", err, b)
	}
}
