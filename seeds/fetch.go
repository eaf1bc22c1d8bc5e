package seeds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Defaults of Fetcher.
const (
	// DefaultMaxBytes is the largest seed list fetched: 64 MiB, a few
	// million names, well above the feeds published today.
	DefaultMaxBytes int64 = 64 << 20
	// DefaultTimeout bounds one fetch, reading the list included.
	DefaultTimeout = time.Minute
)

// ErrTooLarge is the error of a fetch whose list is over the size limit.
var ErrTooLarge = errors.New("seed list over the size limit")

// URLList is a seed list fetched by URL.
type URLList struct {
	URL    string
	Source string // the source tag of its names (see Tag)
	Column string // the CSV column of the names (Options.Column)
}

// Tag is the source tag of the list's names: Source, or else the URL
// (without a password).
func (l URLList) Tag() string {
	if l.Source != "" {
		return l.Source
	}
	return l.Redacted()
}

// Redacted is the URL without its password, for messages.
func (l URLList) Redacted() string {
	if u, err := url.Parse(l.URL); err == nil {
		return u.Redacted()
	}
	return l.URL
}

// Validators identify the version of a list fetched, for a conditional
// request of the next fetch: the server answers 304 Not Modified when the
// list has not changed.
type Validators struct {
	ETag         string `json:"etag,omitempty"`          // sent back as If-None-Match
	LastModified string `json:"last_modified,omitempty"` // sent back as If-Modified-Since
}

// Fetched is what one fetch of a list brought.
type Fetched struct {
	// NotModified is set when the server answered 304 to the conditional
	// request: the list is the version the validators name, and Names and
	// Rejects are empty.
	NotModified bool
	Names       []string // the valid names, each once, in list order
	Rejects     []Reject // the lines rejected; Reject.File is the URL (without a password)
	Validators  Validators
}

// Fetcher fetches seed lists over HTTP and HTTPS and parses them with
// Parse. The zero value works; a Fetcher is safe for concurrent use.
type Fetcher struct {
	Client   *http.Client  // nil: http.DefaultClient
	MaxBytes int64         // largest list read (after decompression); 0: DefaultMaxBytes
	Timeout  time.Duration // bounds one fetch, reading included; 0: DefaultTimeout
}

// ParseURL checks that s is an absolute http or https URL with a host.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http or https URL", u.Redacted())
	}
	return u, nil
}

// Fetch fetches and parses list l. With the validators of the version
// fetched before (prev; zero for none) the request is conditional, and a
// 304 answer brings Fetched.NotModified. Lines that yield no name are
// returned as Rejects, named "URL:line" as a file's are "file:line"; an
// error (the request failing, a status other than 200 and 304, a list
// over MaxBytes, an Options.Column the CSV header lacks) says the list is
// unknown, and brings no names at all.
func (f *Fetcher) Fetch(ctx context.Context, l URLList, prev Validators) (Fetched, error) {
	u, err := ParseURL(l.URL)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetching seeds: %w", err)
	}
	name := u.Redacted()
	maxBytes, timeout, client := f.MaxBytes, f.Timeout, f.Client
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetching seeds %s: %w", name, err)
	}
	req.Header.Set("User-Agent", "fluxwatch")
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetching seeds: %w", err) // the error names the URL
	}
	defer resp.Body.Close()
	got := Fetched{Validators: Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}}
	switch {
	case resp.StatusCode == http.StatusNotModified && prev == (Validators{}):
		return Fetched{}, fmt.Errorf("fetching seeds %s: %s to a request that was not conditional", name, resp.Status)
	case resp.StatusCode == http.StatusNotModified:
		// A 304 may leave validators out (Go's leaves Last-Modified out
		// beside an ETag): those it has not sent still hold.
		got.Validators.ETag = cmp.Or(got.Validators.ETag, prev.ETag)
		got.Validators.LastModified = cmp.Or(got.Validators.LastModified, prev.LastModified)
		got.NotModified = true
		return got, nil
	case resp.StatusCode != http.StatusOK:
		return Fetched{}, fmt.Errorf("fetching seeds %s: %s", name, resp.Status)
	case resp.ContentLength > maxBytes:
		return Fetched{}, tooLarge(name, maxBytes)
	}
	body := &capReader{r: io.LimitedReader{R: resp.Body, N: maxBytes + 1}}
	got.Names, got.Rejects, err = ParseUnique(body, name, Options{Column: l.Column})
	switch {
	case errors.Is(err, errOverLimit):
		return Fetched{}, tooLarge(name, maxBytes)
	case err != nil:
		return Fetched{}, fmt.Errorf("fetching seeds %s: %w", name, err)
	}
	return got, nil
}

func tooLarge(name string, maxBytes int64) error {
	return fmt.Errorf("fetching seeds %s: %w: more than the limit of %d bytes", name, ErrTooLarge, maxBytes)
}

// errOverLimit ends the reading of a list over the limit.
var errOverLimit = errors.New("over the limit")

// capReader reads up to the limit of r and fails once it has read one
// byte more.
type capReader struct{ r io.LimitedReader }

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.r.N == 0 {
		return n, errOverLimit
	}
	return n, err
}
