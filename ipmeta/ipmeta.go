// Package ipmeta answers what network an address belongs to: its origin
// ASN, the AS organisation and the country, from offline tables. The
// classifier uses it to tell addresses spread over many unrelated networks
// (fast flux) from many addresses inside one network (a CDN).
package ipmeta

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Info is what a table knows of one address range.
type Info struct {
	ASN     uint32
	Org     string
	Country string
	Start   netip.Addr
	End     netip.Addr
}

// Table maps addresses to Info. Ranges do not overlap; lookups are binary
// searches. The zero Table is empty. A Table is safe for concurrent reads.
type Table struct {
	ranges []Info // sorted by Start
}

// Len returns the number of ranges.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.ranges)
}

// Lookup returns the range that contains a. Unrouted ranges (ASN 0) are
// not found.
func (t *Table) Lookup(a netip.Addr) (Info, bool) {
	if t == nil {
		return Info{}, false
	}
	a = a.Unmap()
	i := sort.Search(len(t.ranges), func(i int) bool { return a.Less(t.ranges[i].Start) })
	if i == 0 {
		return Info{}, false
	}
	r := t.ranges[i-1]
	if r.End.Less(a) || r.ASN == 0 {
		return Info{}, false
	}
	return r, true
}

// LoadFile reads an iptoasn table (ip2asn-v4.tsv, ip2asn-combined.tsv,
// optionally gzipped): tab-separated range_start, range_end, AS_number,
// country_code, AS_description.
func LoadFile(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	return Load(r, path)
}

// Load reads an iptoasn table from r; name is used in error messages.
func Load(r io.Reader, name string) (*Table, error) {
	t := &Table{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) < 4 {
			return nil, fmt.Errorf("%s:%d: want 5 tab-separated fields (start, end, ASN, country, description), got %d", name, line, len(f))
		}
		start, err1 := netip.ParseAddr(f[0])
		end, err2 := netip.ParseAddr(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: bad address range %q - %q", name, line, f[0], f[1])
		}
		if start.Is4() != end.Is4() || end.Less(start) {
			return nil, fmt.Errorf("%s:%d: range end %s before start %s", name, line, end, start)
		}
		asn, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(f[2]), "AS"), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: bad AS number %q", name, line, f[2])
		}
		info := Info{ASN: uint32(asn), Country: f[3], Start: start, End: end}
		if len(f) > 4 {
			info.Org = f[4]
		}
		t.ranges = append(t.ranges, info)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	sort.Slice(t.ranges, func(i, j int) bool { return t.ranges[i].Start.Less(t.ranges[j].Start) })
	for i := 1; i < len(t.ranges); i++ {
		if !t.ranges[i-1].End.Less(t.ranges[i].Start) {
			return nil, fmt.Errorf("%s: ranges %s-%s and %s-%s overlap", name,
				t.ranges[i-1].Start, t.ranges[i-1].End, t.ranges[i].Start, t.ranges[i].End)
		}
	}
	return t, nil
}
