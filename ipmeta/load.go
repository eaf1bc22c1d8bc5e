package ipmeta

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
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
	var b builder
	strs := map[string]string{} // interned organisation names and country codes
	intern := func(b []byte) string {
		if v, ok := strs[string(b)]; ok {
			return v
		}
		v := string(b)
		strs[v] = v
		return v
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
		b.add(s)
		if err == io.EOF {
			break
		}
	}
	return b.table(), nil
}

func parseLine(text []byte, intern func([]byte) string) (span, error) {
	// Fields as start, end, ASN, country, organisation; absent ones empty.
	var f [5][]byte
	if bytes.IndexByte(text, '\t') >= 0 {
		n := cut(text, '\t', f[:])
		if n < 4 {
			return span{}, fmt.Errorf("want 5 tab-separated fields (start, end, ASN, country, description), got %d", n)
		}
	} else {
		var rec [5][]byte
		n, err := splitCSV(text, rec[:])
		if err != nil {
			return span{}, err
		}
		switch n {
		case 3: // start, end, country
			f = [5][]byte{rec[0], rec[1], nil, rec[2], nil}
		case 4: // start, end, ASN, organisation
			f = [5][]byte{rec[0], rec[1], rec[2], nil, rec[3]}
		default:
			return span{}, fmt.Errorf("want 3 (start,end,country) or 4 (start,end,asn,org) comma-separated fields, got %d", n)
		}
	}
	start, err1 := netip.ParseAddr(string(f[0]))
	end, err2 := netip.ParseAddr(string(f[1]))
	if err1 != nil || err2 != nil {
		return span{}, fmt.Errorf("bad address range %q - %q", f[0], f[1])
	}
	if start.Is4() != end.Is4() || end.Less(start) {
		return span{}, fmt.Errorf("range end %s before start %s", end, start)
	}
	s := span{start: start, end: end}
	if len(f[2]) > 0 {
		asn, ok := parseASN(f[2])
		if !ok {
			return span{}, fmt.Errorf("bad AS number %q", f[2])
		}
		s.info.ASN = asn
	}
	if cc := bytes.ToUpper(bytes.TrimSpace(f[3])); len(cc) == 2 && string(cc) != "ZZ" {
		s.info.Country = intern(cc)
	} else if len(cc) > 0 && string(cc) != "NONE" && string(cc) != "ZZ" && string(cc) != "UNKNOWN" && string(cc) != "-" {
		return span{}, fmt.Errorf("bad country code %q", f[3])
	}
	if len(f[4]) > 0 {
		s.info.Org = intern(f[4])
	}
	return s, nil
}

// cut splits text at sep into fields, the last one taking the rest, and
// returns how many there were.
func cut(text []byte, sep byte, fields [][]byte) int {
	n := 0
	for n < len(fields)-1 {
		i := bytes.IndexByte(text, sep)
		if i < 0 {
			break
		}
		fields[n], text = text[:i], text[i+1:]
		n++
	}
	fields[n] = text
	return n + 1
}

// parseASN reads "13335" or "AS13335".
func parseASN(b []byte) (uint32, bool) {
	if len(b) > 2 && (b[0] == 'A' || b[0] == 'a') && (b[1] == 'S' || b[1] == 's') {
		b = b[2:]
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return uint32(v), v <= 1<<32-1
}

// splitCSV splits one ip-location-db line into fields and returns their
// number. Only the last field (the organisation) is ever quoted there; a
// quoted field elsewhere is an error.
func splitCSV(text []byte, fields [][]byte) (int, error) {
	n := 0
	for {
		if len(text) > 0 && text[0] == '"' {
			// A quoted field runs to the closing quote; "" stands for ".
			var v []byte
			i := 1
			for ; i < len(text); i++ {
				if text[i] != '"' {
					continue
				}
				if i+1 < len(text) && text[i+1] == '"' {
					v = append(v, text[1:i+1]...)
					text = append([]byte{'"'}, text[i+2:]...)
					i = 0
					continue
				}
				break
			}
			if i >= len(text) {
				return 0, fmt.Errorf("bad CSV: unterminated quoted field")
			}
			v = append(v, text[1:i]...)
			rest := text[i+1:]
			if len(rest) > 0 && rest[0] != ',' {
				return 0, fmt.Errorf("bad CSV: text after a quoted field")
			}
			if n < len(fields) {
				fields[n] = v
			}
			n++
			if len(rest) == 0 {
				return n, nil
			}
			text = rest[1:]
			continue
		}
		i := bytes.IndexByte(text, ',')
		if i < 0 {
			if n < len(fields) {
				fields[n] = text
			}
			return n + 1, nil
		}
		if n < len(fields) {
			fields[n] = text[:i]
		}
		n++
		text = text[i+1:]
	}
}

// builder collects ranges straight into a Table's compact form. Files
// whose ranges are sorted and disjoint (iptoasn, ip-location-db ASN) never
// hold a second copy; others are flattened at the end.
type builder struct {
	t       Table
	index   map[Info]uint32
	last    span
	n       int
	ordered bool
}

func (b *builder) add(s span) {
	if b.index == nil {
		b.index, b.ordered = map[Info]uint32{}, true
	}
	if b.n > 0 && b.last.start.Is4() == s.start.Is4() && !b.last.end.Less(s.start) ||
		b.n > 0 && b.last.start.Is6() && s.start.Is4() {
		b.ordered = false
	}
	b.last = s
	b.n++
	i, ok := b.index[s.info]
	if !ok {
		i = uint32(len(b.t.infos))
		b.index[s.info] = i
		b.t.infos = append(b.t.infos, s.info)
	}
	if s.start.Is4() {
		b.t.v4 = append(b.t.v4, span4{start: v4(s.start), end: v4(s.end), info: i})
	} else {
		b.t.v6 = append(b.t.v6, span6{start: s.start.As16(), end: s.end.As16(), info: i})
	}
}

func (b *builder) table() *Table {
	if !b.ordered {
		b.t.v4 = flatten4(b.t.v4)
		if len(b.t.v6) > 0 {
			spans := make([]span, 0, len(b.t.v6))
			for _, s := range b.t.v6 {
				spans = append(spans, span{start: netip.AddrFrom16(s.start), end: netip.AddrFrom16(s.end), info: b.t.infos[s.info]})
			}
			v6 := newTable(flatten(spans))
			b.t.v6 = v6.v6
			for i := range b.t.v6 { // re-point at this table's infos
				b.t.v6[i].info = b.index[v6.infos[b.t.v6[i].info]]
			}
		}
	}
	b.t.v4, b.t.v6 = slices.Clip(b.t.v4), slices.Clip(b.t.v6)
	return &b.t
}

// flatten4 is flatten for the compact IPv4 form, sorting in place: the
// innermost range wins.
func flatten4(in []span4) []span4 {
	slices.SortFunc(in, func(a, b span4) int {
		if a.start != b.start {
			return cmp.Compare(a.start, b.start)
		}
		return cmp.Compare(b.end, a.end)
	})
	out := make([]span4, 0, len(in))
	var stack []span4
	var cursor uint64 // first address not yet emitted
	emit := func(s span4, upTo uint32) {
		if uint64(upTo) >= cursor {
			out = append(out, span4{start: uint32(cursor), end: upTo, info: s.info})
		}
	}
	pop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		emit(top, top.end)
		cursor = max(cursor, uint64(top.end)+1)
	}
	for _, s := range in {
		for len(stack) > 0 && stack[len(stack)-1].end < s.start {
			pop()
		}
		if len(stack) > 0 && s.start > 0 {
			emit(stack[len(stack)-1], s.start-1)
		}
		cursor = uint64(s.start)
		stack = append(stack, s)
	}
	for len(stack) > 0 {
		pop()
	}
	return out
}

func from4(x uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
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
