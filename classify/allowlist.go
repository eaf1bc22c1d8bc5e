package classify

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/fluxwatch/fluxwatch/seeds"
)

// Allowlist holds names that are never listed: a name matches when it or
// one of its parents is on the list. A nil *Allowlist matches nothing.
type Allowlist struct {
	names map[string]string // name → where it came from ("file:line")
}

// LoadAllowlist reads allowlist files: plain names, one a line (#
// comments), or "rank,domain" CSV as Tranco publishes it.
func LoadAllowlist(paths ...string) (*Allowlist, error) {
	a := &Allowlist{names: map[string]string{}}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading allowlist: %w", err)
		}
		err = a.read(f, path)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *Allowlist) read(r io.Reader, path string) error {
	return eachLine(r, path, func(line int, text string) error {
		if rank, name, ok := strings.Cut(text, ","); ok {
			if _, err := strconv.Atoi(strings.TrimSpace(rank)); err != nil {
				if line == 1 { // a header such as "rank,domain"
					return nil
				}
				return fmt.Errorf("%s:%d: want NAME or RANK,NAME", path, line)
			}
			text = strings.TrimSpace(name)
		}
		name, err := seeds.Normalize(text)
		if err != nil {
			return fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if _, ok := a.names[name]; !ok {
			a.names[name] = fmt.Sprintf("%s:%d", path, line)
		}
		return nil
	})
}

// eachLine calls fn with every line of r that is not blank once a #
// comment is cut off, trimmed, with its 1-based number.
func eachLine(r io.Reader, path string, fn func(line int, text string) error) error {
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		if text = strings.TrimSpace(text); text == "" {
			continue
		}
		if err := fn(line, text); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// Len returns the number of names.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.names)
}

// Match reports whether name or a parent of it is allowlisted, and the
// entry that matched ("name from file:line").
func (a *Allowlist) Match(name string) (bool, string) {
	if a == nil {
		return false, ""
	}
	for n := name; n != ""; {
		if where, ok := a.names[n]; ok {
			return true, n + " from " + where
		}
		_, rest, ok := strings.Cut(n, ".")
		if !ok {
			break
		}
		n = rest
	}
	return false, ""
}

//go:embed cdn_suffixes.txt
var cdnSuffixesText string

// DefaultCDNSuffixes are the zones of well-known content delivery networks
// that fluxwatch ships with (cdn_suffixes.txt).
var DefaultCDNSuffixes = mustSuffixes(cdnSuffixesText)

func mustSuffixes(text string) []string {
	s, err := ParseSuffixes(strings.NewReader(text), "cdn_suffixes.txt")
	if err != nil {
		panic(err)
	}
	return s
}

// ParseSuffixes reads a suffix list: one zone a line, # comments.
func ParseSuffixes(r io.Reader, path string) ([]string, error) {
	var out []string
	err := eachLine(r, path, func(line int, text string) error {
		name, err := seeds.Normalize(text)
		if err != nil {
			return fmt.Errorf("%s:%d: %v", path, line, err)
		}
		out = append(out, name)
		return nil
	})
	return out, err
}

// LoadSuffixes reads a suffix list file.
func LoadSuffixes(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading CDN suffixes: %w", err)
	}
	defer f.Close()
	return ParseSuffixes(f, path)
}
