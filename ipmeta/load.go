package ipmeta

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Kind says what a file is expected to hold.
type Kind int

// File kinds.
const (
	ASN Kind = iota
	Country
)

// Open loads a file of the given kind into db, choosing the format by its
// content: a MaxMind database, iptoasn TSV or ip-location-db CSV, each
// text format optionally gzipped.
func (db *DB) Open(path string, kind Kind) error {
	if strings.HasSuffix(path, ".mmdb") {
		m, err := openMMDB(path)
		if err != nil {
			return err
		}
		if kind == ASN {
			db.asn = append(db.asn, m)
		} else {
			db.country = append(db.country, m)
		}
		return nil
	}
	t, err := LoadFile(path)
	if err != nil {
		return err
	}
	if kind == ASN {
		db.AddASN(t)
	} else {
		db.AddCountry(t)
	}
	return nil
}

// LoadFile reads a text table, gzipped if its name ends in .gz.
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

// Load reads a text table from r; name is used in error messages. The
// format is recognised from the first data line: tab-separated iptoasn
// (start, end, ASN, country, description), or comma-separated
// ip-location-db with three columns (start, end, country) or four (start,
// end, ASN, organisation). Nested ranges are allowed: the innermost wins.
func Load(r io.Reader, name string) (*Table, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var spans []span
	orgs := map[string]string{} // interned organisation names
	intern := func(s string) string {
		if v, ok := orgs[s]; ok {
			return v
		}
		orgs[s] = s
		return s
	}
	line := 0
	for {
		text, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("%s:%d: line too long", name, line+1)
		}
		if len(text) == 0 && err != nil {
			if err == io.EOF {
				break
			}
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		line++
		text = bytes.TrimRight(text, "\r\n")
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		s, perr := parseLine(text, intern)
		if perr != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, perr)
		}
		spans = append(spans, s)
		if err == io.EOF {
			break
		}
	}
	return &Table{spans: flatten(spans)}, nil
}

func parseLine(text []byte, intern func(string) string) (span, error) {
	var f []string
	if bytes.IndexByte(text, '\t') >= 0 {
		f = strings.Split(string(text), "\t")
		if len(f) < 4 {
			return span{}, fmt.Errorf("want 5 tab-separated fields (start, end, ASN, country, description), got %d", len(f))
		}
	} else {
		rec, err := splitCSV(text)
		if err != nil {
			return span{}, err
		}
		switch len(rec) {
		case 3: // start, end, country
			f = []string{rec[0], rec[1], "", rec[2]}
		case 4: // start, end, ASN, organisation
			f = []string{rec[0], rec[1], rec[2], "", rec[3]}
		default:
			return span{}, fmt.Errorf("want 3 (start,end,country) or 4 (start,end,asn,org) comma-separated fields, got %d", len(rec))
		}
	}
	start, err1 := netip.ParseAddr(f[0])
	end, err2 := netip.ParseAddr(f[1])
	if err1 != nil || err2 != nil {
		return span{}, fmt.Errorf("bad address range %q - %q", f[0], f[1])
	}
	if start.Is4() != end.Is4() || end.Less(start) {
		return span{}, fmt.Errorf("range end %s before start %s", end, start)
	}
	s := span{start: start, end: end}
	if f[2] != "" {
		asn, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(f[2]), "AS"), 10, 32)
		if err != nil {
			return span{}, fmt.Errorf("bad AS number %q", f[2])
		}
		s.info.ASN = uint32(asn)
	}
	if cc := strings.ToUpper(strings.TrimSpace(f[3])); len(cc) == 2 && cc != "ZZ" {
		s.info.Country = cc
	} else if cc != "" && cc != "NONE" && cc != "ZZ" && cc != "UNKNOWN" && cc != "-" {
		return span{}, fmt.Errorf("bad country code %q", f[3])
	}
	if len(f) > 4 {
		s.info.Org = intern(f[4])
	}
	return s, nil
}

// splitCSV splits one ip-location-db line. Only the last field (the
// organisation) is ever quoted, so the fast path splits on commas and falls
// back to encoding/csv for quoted lines.
func splitCSV(text []byte) ([]string, error) {
	if bytes.IndexByte(text, '"') < 0 {
		return strings.Split(string(text), ","), nil
	}
	rec, err := csv.NewReader(bytes.NewReader(text)).Read()
	if err != nil {
		return nil, fmt.Errorf("bad CSV: %v", err)
	}
	return rec, nil
}

// flatten turns possibly nested ranges into disjoint ones where the
// innermost range wins. Ranges that overlap without nesting are split at
// the later start.
func flatten(in []span) []span {
	slices.SortStableFunc(in, func(a, b span) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		return b.end.Compare(a.end) // the outer range first
	})
	out := make([]span, 0, len(in))
	var stack []span
	var cursor netip.Addr // first address not yet emitted; invalid: none
	emit := func(s span, upTo netip.Addr) {
		if !cursor.IsValid() || upTo.Less(cursor) || cursor.Is4() != upTo.Is4() {
			return
		}
		out = append(out, span{start: cursor, end: upTo, info: s.info})
	}
	// pop closes the innermost open range.
	pop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		emit(top, top.end)
		if !cursor.IsValid() || !top.end.Less(cursor) {
			cursor = top.end.Next()
		}
	}
	for _, s := range in {
		for len(stack) > 0 && (stack[len(stack)-1].end.Less(s.start) || stack[len(stack)-1].start.Is4() != s.start.Is4()) {
			pop()
		}
		if len(stack) > 0 {
			emit(stack[len(stack)-1], s.start.Prev())
		}
		cursor = s.start
		stack = append(stack, s)
	}
	for len(stack) > 0 {
		pop()
	}
	// Drop empty info and merge nothing else: adjacent ranges stay apart.
	return slices.DeleteFunc(out, func(s span) bool { return s.info == (Info{}) })
}
