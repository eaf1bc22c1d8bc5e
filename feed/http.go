package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultHTTPAddr is where a FileServer listens when FileOptions.Addr is empty.
const DefaultHTTPAddr = "127.0.0.1:8053"

// FileOptions configure a FileServer.
type FileOptions struct {
	// Addr is the TCP address to listen on (DefaultHTTPAddr when empty).
	Addr string
	// Files maps the names served (/NAME) to the paths of the published
	// files. A path that is a directory (an export written as several
	// files) is served as /NAME/ (its file names) and /NAME/FILE.
	Files map[string]string
	// Logger receives errors (slog.Default when nil).
	Logger *slog.Logger
	// App, if set, answers every request whose path does not name a
	// published file, "/" included (the daemon's web view, metrics and
	// API); it enforces its own methods.
	App http.Handler
}

// FileServer serves a fixed set of published files over HTTP, read-only:
// GET and HEAD of a listed name, answered with ETag (a hash of the
// content), Last-Modified and Cache-Control: no-cache, so a poller sending
// If-None-Match or If-Modified-Since gets 304 Not Modified until the file
// changes. "/" lists the names. Nothing else is reachable: no other file,
// no directory listing, no method that writes.
type FileServer struct {
	app   http.Handler
	files map[string]string
	names []string
	log   *slog.Logger
	addr  string

	mu     sync.Mutex
	etags  map[string]etag // by path
	srv    *http.Server
	bound  string
	closed bool
}

type etag struct {
	info os.FileInfo
	tag  string
}

var _ http.Handler = (*FileServer)(nil)

// NewFileServer checks opts and returns a FileServer that does not listen yet.
func NewFileServer(opts FileOptions) (*FileServer, error) {
	f := &FileServer{app: opts.App, files: map[string]string{}, log: opts.Logger, addr: opts.Addr, etags: map[string]etag{}}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.addr == "" {
		f.addr = DefaultHTTPAddr
	}
	for name, p := range opts.Files {
		if !validName(name) {
			return nil, fmt.Errorf("feed: cannot serve a file as %q: want a plain file name", name)
		}
		f.files[name] = p
		f.names = append(f.names, name)
	}
	slices.Sort(f.names)
	return f, nil
}

// validName accepts one path element that is not hidden.
func validName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, "/\\\x00")
}

// Start listens and serves in the background until Close.
func (f *FileServer) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil || f.closed {
		return errors.New("feed: file server already started or closed")
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("feed: listening on %s: %w", f.addr, err)
	}
	f.bound = ln.Addr().String()
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(f.log.Handler(), slog.LevelDebug)}
	go func() {
		if err := f.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.log.Error("feed: HTTP server stopped", "addr", f.bound, "err", err)
		}
	}()
	f.log.Info("feed: serving files", "addr", f.bound, "files", f.names)
	return nil
}

// Addr returns the address the server listens on, once started.
func (f *FileServer) Addr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bound
}

// Close stops the server, letting requests in progress finish for up to
// five seconds.
func (f *FileServer) Close() error {
	f.mu.Lock()
	srv := f.srv
	f.closed = true
	f.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// ServeHTTP implements http.Handler.
func (f *FileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.app != nil {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if _, ok := f.files[name]; !ok {
			f.app.ServeHTTP(w, r)
			return
		}
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only: GET and HEAD only", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/" {
		f.index(w, f.names, "")
		return
	}
	name, rest, sub := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	target, ok := f.files[name]
	if !ok || path.Clean(p) != strings.TrimSuffix(p, "/") || sub && rest != "" && !validName(rest) {
		http.NotFound(w, r)
		return
	}
	info, err := os.Stat(target)
	switch {
	case err != nil:
		f.notPublished(w, r, name, err)
	case info.IsDir() && !sub:
		http.Redirect(w, r, "/"+name+"/", http.StatusMovedPermanently)
	case info.IsDir() && rest == "":
		f.dirIndex(w, r, name, target)
	case info.IsDir():
		f.serveFile(w, r, path.Join(target, rest))
	case sub:
		http.NotFound(w, r)
	default:
		f.serveFile(w, r, target)
	}
}

// index lists names, one a line.
func (f *FileServer) index(w http.ResponseWriter, names []string, prefix string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	for _, n := range names {
		fmt.Fprintln(w, prefix+n)
	}
}

// dirIndex lists the visible regular files of a published directory.
func (f *FileServer) dirIndex(w http.ResponseWriter, r *http.Request, name, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.notPublished(w, r, name, err)
		return
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && validName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	f.index(w, names, "")
}

func (f *FileServer) notPublished(w http.ResponseWriter, r *http.Request, name string, err error) {
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, name+" is not published yet", http.StatusNotFound)
		return
	}
	f.log.Error("feed: serving file", "name", name, "err", err)
	http.Error(w, "cannot read "+name, http.StatusInternalServerError)
}

// serveFile serves one regular file. It is opened once, so a publish that
// renames a new file over it mid-request cannot mix the two: the request
// gets the old file whole, with the old file's validators.
func (f *FileServer) serveFile(w http.ResponseWriter, r *http.Request, p string) {
	file, err := os.Open(p)
	if err != nil {
		f.notPublished(w, r, path.Base(p), err)
		return
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil || !info.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	tag, err := f.etag(p, file, info)
	if err != nil {
		f.notPublished(w, r, path.Base(p), err)
		return
	}
	w.Header().Set("ETag", tag)
	w.Header().Set("Cache-Control", "no-cache")
	if strings.HasSuffix(p, ".rpz") || strings.HasSuffix(p, ".txt") || strings.HasSuffix(p, ".hosts") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	http.ServeContent(w, r, path.Base(p), info.ModTime(), file)
}

// etag returns the strong validator of an open file: a hash of its
// content, computed once per file version (same file, size and time).
func (f *FileServer) etag(p string, file *os.File, info os.FileInfo) (string, error) {
	f.mu.Lock()
	e, ok := f.etags[p]
	f.mu.Unlock()
	if ok && os.SameFile(e.info, info) && e.info.Size() == info.Size() && e.info.ModTime().Equal(info.ModTime()) {
		return e.tag, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return "", err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tag := `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
	f.mu.Lock()
	if len(f.etags) >= 4096 { // a published directory whose file names keep changing
		clear(f.etags)
	}
	f.etags[p] = etag{info, tag}
	f.mu.Unlock()
	return tag, nil
}
