package feed

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func startFileServer(t *testing.T, files map[string]string) (*FileServer, string) {
	t.Helper()
	f, err := NewFileServer(FileOptions{Addr: "127.0.0.1:0", Files: files,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, "http://" + f.Addr()
}

func get(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// writeAtomic replaces path the way the exporter does: a new file renamed over it.
func writeAtomic(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileServerConditionalGet(t *testing.T) {
	dir := t.TempDir()
	rpz := filepath.Join(dir, "blocklist.rpz")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	writeAtomic(t, rpz, "version one\n", t0)
	_, base := startFileServer(t, map[string]string{"blocklist.rpz": rpz})

	resp, body := get(t, "GET", base+"/blocklist.rpz", nil)
	tag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || body != "version one\n" || tag == "" ||
		resp.Header.Get("Last-Modified") != "Sun, 01 Mar 2026 12:00:00 GMT" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, body := get(t, "GET", base+"/blocklist.rpz", map[string]string{"If-None-Match": tag}); resp.StatusCode != 304 || body != "" {
		t.Fatalf("If-None-Match with the current ETag: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, "GET", base+"/blocklist.rpz", map[string]string{"If-Modified-Since": "Sun, 01 Mar 2026 12:00:00 GMT"}); resp.StatusCode != 304 {
		t.Fatalf("If-Modified-Since the file's time: %d", resp.StatusCode)
	}
	if resp, _ := get(t, "HEAD", base+"/blocklist.rpz", nil); resp.StatusCode != 200 || resp.Header.Get("ETag") != tag ||
		resp.ContentLength != int64(len("version one\n")) {
		t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}

	// A new publish: the old validators no longer match.
	writeAtomic(t, rpz, "version two, longer\n", t0.Add(time.Minute))
	resp, body = get(t, "GET", base+"/blocklist.rpz", map[string]string{"If-None-Match": tag,
		"If-Modified-Since": "Sun, 01 Mar 2026 12:00:00 GMT"})
	if resp.StatusCode != 200 || body != "version two, longer\n" || resp.Header.Get("ETag") == tag {
		t.Fatalf("after a publish: %d %q etag %s (old %s)", resp.StatusCode, body, resp.Header.Get("ETag"), tag)
	}
	// The same content again (a new file, new time) keeps its content hash as ETag.
	tag2 := resp.Header.Get("ETag")
	writeAtomic(t, rpz, "version two, longer\n", t0.Add(2*time.Minute))
	if resp, _ := get(t, "GET", base+"/blocklist.rpz", map[string]string{"If-None-Match": tag2}); resp.StatusCode != 304 {
		t.Fatalf("same content rewritten: %d", resp.StatusCode)
	}
}

func TestFileServerReadOnlyAndConfined(t *testing.T) {
	dir := t.TempDir()
	rpz := filepath.Join(dir, "blocklist.rpz")
	writeAtomic(t, rpz, "zone\n", time.Now())
	os.WriteFile(filepath.Join(dir, "fluxwatch.db"), []byte("private"), 0o600)
	misp := filepath.Join(dir, "misp")
	os.Mkdir(misp, 0o755)
	os.WriteFile(filepath.Join(misp, "manifest.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(misp, ".manifest.json.tmp-1"), []byte("half"), 0o644)
	os.Mkdir(filepath.Join(misp, "sub"), 0o755)
	_, base := startFileServer(t, map[string]string{"blocklist.rpz": rpz, "misp": misp, "later.txt": filepath.Join(dir, "later.txt")})

	if resp, body := get(t, "GET", base+"/", nil); resp.StatusCode != 200 || body != "blocklist.rpz\nlater.txt\nmisp\n" {
		t.Fatalf("index: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, "GET", base+"/misp/", nil); resp.StatusCode != 200 || body != "manifest.json\n" {
		t.Fatalf("directory export index: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, "GET", base+"/misp/manifest.json", nil); resp.StatusCode != 200 || body != "{}" {
		t.Fatalf("file in a directory export: %d %q", resp.StatusCode, body)
	}
	for _, p := range []string{"/fluxwatch.db", "/../fluxwatch.db", "/misp/../fluxwatch.db", "/misp/.manifest.json.tmp-1",
		"/misp/sub", "/blocklist.rpz/x", "/%2e%2e/fluxwatch.db", "/misp/..%2ffluxwatch.db"} {
		if resp, body := get(t, "GET", base+p, nil); resp.StatusCode != 404 || strings.Contains(body, "private") {
			t.Errorf("GET %s: %d %q, want 404", p, resp.StatusCode, body)
		}
	}
	if resp, body := get(t, "GET", base+"/later.txt", nil); resp.StatusCode != 404 || !strings.Contains(body, "not published yet") {
		t.Errorf("an export not written yet: %d %q", resp.StatusCode, body)
	}
	for _, m := range []string{"PUT", "POST", "DELETE", "PATCH"} {
		resp, _ := get(t, m, base+"/blocklist.rpz", nil)
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, want 405", m, resp.StatusCode)
		}
	}
	if b, _ := os.ReadFile(rpz); string(b) != "zone\n" {
		t.Fatalf("the file changed: %q", b)
	}
}

func TestNewFileServerRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", ".hidden", "a/b", "..", `a\b`} {
		if _, err := NewFileServer(FileOptions{Files: map[string]string{name: "/tmp/x"}}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}
