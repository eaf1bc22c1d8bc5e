package config

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// ParseQTypes turns type names (A, AAAA, NS, …) into numbers.
func ParseQTypes(names []string) ([]uint16, error) {
	var out []uint16
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			part = strings.ToUpper(strings.TrimSpace(part))
			if part == "" {
				continue
			}
			t, ok := dns.StringToType[part]
			if !ok || t == dns.TypeANY || t == dns.TypeAXFR || t == dns.TypeIXFR {
				return nil, fmt.Errorf("unknown or unsupported query type %q", part)
			}
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no query types")
	}
	return out, nil
}

// ReadResolvers reads a resolver list: one ADDR[:PORT] a line, as massdns
// and dnsx take them; blank lines and # comments are skipped.
func ReadResolvers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading resolvers: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" {
			continue
		}
		v, err := obs.ParseVantage(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}
