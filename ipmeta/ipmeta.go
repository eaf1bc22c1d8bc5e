// Package ipmeta answers what network an address belongs to: its origin
// ASN, the AS organisation and the country, from offline tables. The
// classifier uses it to tell addresses spread over many unrelated networks
// (fast flux) from many addresses inside one network (a CDN).
//
// Tables are loaded once into sorted, disjoint ranges; a lookup is a binary
// search that allocates nothing. Supported files: iptoasn TSV
// (ip2asn-v4.tsv, ip2asn-combined.tsv), ip-location-db CSV (asn-ipv4.csv,
// asn-ipv6.csv, and country CSVs whose ranges may nest), each optionally
// gzipped, and MaxMind-format .mmdb ASN and country databases.
package ipmeta

import (
	"bytes"
	"net/netip"
	"slices"
	"sort"
)

// Info is what the tables know of an address.
type Info struct {
	ASN     uint32 // 0: unknown
	Org     string
	Country string // ISO 3166 alpha-2, upper case; "" unknown
}

// span is one range while a table is built.
type span struct {
	start, end netip.Addr
	info       Info
}

// Compact forms of a range: the full ASN table has half a million of them.
type span4 struct {
	start, end uint32
	info       uint32 // index into Table.infos
}

type span6 struct {
	start, end [16]byte
	info       uint32
}

// Table maps addresses to Info through disjoint ranges sorted by start.
// The zero Table is empty. A Table is safe for concurrent reads.
type Table struct {
	v4    []span4
	v6    []span6
	infos []Info // distinct Info values, shared by the ranges
}

// newTable compacts disjoint ranges sorted by start.
func newTable(spans []span) *Table {
	t := &Table{}
	index := map[Info]uint32{}
	for _, s := range spans {
		i, ok := index[s.info]
		if !ok {
			i = uint32(len(t.infos))
			index[s.info] = i
			t.infos = append(t.infos, s.info)
		}
		if s.start.Is4() {
			t.v4 = append(t.v4, span4{start: v4(s.start), end: v4(s.end), info: i})
		} else {
			t.v6 = append(t.v6, span6{start: s.start.As16(), end: s.end.As16(), info: i})
		}
	}
	t.v4 = slices.Clip(t.v4)
	t.v6 = slices.Clip(t.v6)
	return t
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Len returns the number of ranges.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.v4) + len(t.v6)
}

// Lookup returns the Info of the range holding a.
func (t *Table) Lookup(a netip.Addr) (Info, bool) {
	if t == nil {
		return Info{}, false
	}
	a = a.Unmap()
	if a.Is4() {
		x, s := v4(a), t.v4
		i := sort.Search(len(s), func(i int) bool { return x < s[i].start })
		if i == 0 || s[i-1].end < x {
			return Info{}, false
		}
		return t.infos[s[i-1].info], true
	}
	x, s := a.As16(), t.v6
	i := sort.Search(len(s), func(i int) bool { return bytes.Compare(x[:], s[i].start[:]) < 0 })
	if i == 0 || bytes.Compare(s[i-1].end[:], x[:]) < 0 {
		return Info{}, false
	}
	return t.infos[s[i-1].info], true
}

// DB answers from several sources: the ASN and organisation from the first
// ASN source that knows the address, the country from the first country
// source that does (or else from the ASN source's own country column).
type DB struct {
	asn     []source
	country []source
}

// source is one loaded table or database.
type source interface {
	lookup(a netip.Addr) (Info, bool)
	size() int
}

func (t *Table) lookup(a netip.Addr) (Info, bool) { return t.Lookup(a) }
func (t *Table) size() int                        { return t.Len() }

// Len returns the number of ranges (or, for .mmdb files, networks) loaded.
func (db *DB) Len() int {
	if db == nil {
		return 0
	}
	n := 0
	for _, s := range append(db.asn[:len(db.asn):len(db.asn)], db.country...) {
		n += s.size()
	}
	return n
}

// HasASN reports whether any ASN source is loaded.
func (db *DB) HasASN() bool { return db != nil && len(db.asn) > 0 }

// HasCountry reports whether countries can be known: a country source, or
// an ASN source with a country column.
func (db *DB) HasCountry() bool { return db != nil && (len(db.country) > 0 || len(db.asn) > 0) }

// Lookup returns what the sources know of a. ok is false when no source
// knows anything.
func (db *DB) Lookup(a netip.Addr) (info Info, ok bool) {
	if db == nil {
		return Info{}, false
	}
	for _, s := range db.asn {
		if i, found := s.lookup(a); found && i.ASN != 0 {
			info, ok = i, true
			break
		}
	}
	for _, s := range db.country {
		if i, found := s.lookup(a); found && i.Country != "" {
			info.Country, ok = i.Country, true
			break
		}
	}
	return info, ok
}

// AddASN adds an ASN source; earlier sources win.
func (db *DB) AddASN(t *Table) { db.asn = append(db.asn, t) }

// AddCountry adds a country source; earlier sources win.
func (db *DB) AddCountry(t *Table) { db.country = append(db.country, t) }
