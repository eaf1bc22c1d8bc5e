package feed

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Errors of Publish.
var (
	// ErrNoSOA: the records hold no SOA at the zone's apex, or more than one.
	ErrNoSOA = errors.New("feed: zone needs exactly one SOA at its apex")
	// ErrOutOfZone: a record's owner is not the zone or a name below it.
	ErrOutOfZone = errors.New("feed: record outside the zone")
	// ErrSerial: the new serial is not above the one being served (RFC 1982
	// arithmetic), so secondaries would never fetch the new version.
	ErrSerial = errors.New("feed: serial does not increase")
)

// version is one published state of the zone. It is never changed after
// Publish made it, so transfers read it without locks.
type version struct {
	soa  *dns.SOA
	rrs  []dns.RR // every record but the apex SOA, sorted by key
	keys []string // keys[i] identifies rrs[i]
	// diffs lead from older versions to this one, oldest first; the last
	// one ends at soa. At most Options.Versions are kept.
	diffs []diff
}

// diff is what changed from one serial to the next: the IXFR sequence
// "old SOA, deleted records, new SOA, added records" (RFC 1995 section 4).
type diff struct {
	from, to       *dns.SOA
	deleted, added []dns.RR
}

func (v *version) serial() uint32 { return v.soa.Serial }

// newVersion checks rrs as a complete zone named zone and builds the
// version that follows prev (nil for the first), keeping at most keep
// diffs. It returns nil and no error when rrs is exactly prev.
func newVersion(zone string, rrs []dns.RR, prev *version, keep int) (*version, error) {
	v := &version{}
	seen := make(map[string]bool, len(rrs))
	type keyed struct {
		key string
		rr  dns.RR
	}
	list := make([]keyed, 0, len(rrs))
	for _, rr := range rrs {
		h := rr.Header()
		name := dns.CanonicalName(h.Name)
		if !dns.IsSubDomain(zone, name) {
			return nil, fmt.Errorf("%w %s: %s", ErrOutOfZone, zone, h.Name)
		}
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("feed: %s: class %s, want IN", h.Name, dns.Class(h.Class))
		}
		rr = dns.Copy(rr)
		rr.Header().Name = name
		if soa, ok := rr.(*dns.SOA); ok {
			if name != zone || v.soa != nil {
				return nil, fmt.Errorf("%w (%s)", ErrNoSOA, zone)
			}
			v.soa = soa
			continue
		}
		key := rr.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		list = append(list, keyed{key, rr})
	}
	if v.soa == nil {
		return nil, fmt.Errorf("%w (%s)", ErrNoSOA, zone)
	}
	slices.SortFunc(list, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	v.rrs = make([]dns.RR, len(list))
	v.keys = make([]string, len(list))
	for i, k := range list {
		v.rrs[i], v.keys[i] = k.rr, k.key
	}
	if prev == nil {
		return v, nil
	}
	if v.serial() == prev.serial() {
		if slices.Equal(v.keys, prev.keys) && v.soa.String() == prev.soa.String() {
			return nil, nil // published again: nothing to do
		}
		return nil, fmt.Errorf("%w: %d changed the zone but is the serial already served", ErrSerial, v.serial())
	}
	if !serialAfter(v.serial(), prev.serial()) {
		return nil, fmt.Errorf("%w: %d is not after %d", ErrSerial, v.serial(), prev.serial())
	}
	d := diff{from: prev.soa, to: v.soa}
	d.deleted, d.added = difference(prev, v)
	if keep > 0 {
		diffs := append(prev.diffs[:len(prev.diffs):len(prev.diffs)], d) // never share prev's array
		v.diffs = diffs[max(0, len(diffs)-keep):]
	}
	return v, nil
}

// difference returns the records of a missing from b and those of b
// missing from a, walking both sorted key lists once.
func difference(a, b *version) (deleted, added []dns.RR) {
	i, j := 0, 0
	for i < len(a.keys) || j < len(b.keys) {
		switch {
		case j == len(b.keys) || i < len(a.keys) && a.keys[i] < b.keys[j]:
			deleted = append(deleted, a.rrs[i])
			i++
		case i == len(a.keys) || b.keys[j] < a.keys[i]:
			added = append(added, b.rrs[j])
			j++
		default:
			i++
			j++
		}
	}
	return deleted, added
}

// serialAfter reports whether serial a comes after b in RFC 1982 serial
// number arithmetic (32 bits: a wraps past 2^32 - 1 to 0 and is still after).
func serialAfter(a, b uint32) bool {
	return a != b && int32(a-b) > 0
}

// axfr returns the records of a full transfer: SOA, the zone, SOA.
func (v *version) axfr() []dns.RR {
	out := make([]dns.RR, 0, len(v.rrs)+2)
	out = append(out, v.soa)
	out = append(out, v.rrs...)
	return append(out, v.soa)
}

// ixfr answers an IXFR from a client at serial from (RFC 1995 section 4):
// the current SOA alone when the client is up to date (or claims a later
// serial), the differences when a kept diff starts at from, and otherwise
// a full zone in AXFR form. incremental says which of the last two it is.
func (v *version) ixfr(from uint32) (rrs []dns.RR, incremental bool) {
	if from == v.serial() || serialAfter(from, v.serial()) {
		return []dns.RR{v.soa}, false
	}
	start := slices.IndexFunc(v.diffs, func(d diff) bool { return d.from.Serial == from })
	if start < 0 {
		return v.axfr(), false
	}
	rrs = append(rrs, v.soa)
	for _, d := range v.diffs[start:] {
		rrs = append(rrs, d.from)
		rrs = append(rrs, d.deleted...)
		rrs = append(rrs, d.to)
		rrs = append(rrs, d.added...)
	}
	return append(rrs, v.soa), true
}

// ParseZone reads a zone in master file format (what results writes for
// the rpz format) with origin zone. $INCLUDE is refused: a published file
// must not pull in other files.
func ParseZone(r io.Reader, zone, file string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(r, dns.Fqdn(zone), file)
	zp.SetIncludeAllowed(false)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("parsing zone %s: %w", file, err)
	}
	return rrs, nil
}

// ReadZoneFile parses the zone file at path.
func ReadZoneFile(path, zone string) ([]dns.RR, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading zone: %w", err)
	}
	defer f.Close()
	return ParseZone(f, zone, path)
}

// ReadZoneSerial returns the serial of the zone file at path (origin
// zone): the SOA at its apex, read without parsing the rest of the file.
func ReadZoneSerial(path, zone string) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading zone serial: %w", err)
	}
	defer f.Close()
	origin := dns.CanonicalName(zone)
	zp := dns.NewZoneParser(f, origin, path)
	zp.SetIncludeAllowed(false)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if soa, isSOA := rr.(*dns.SOA); isSOA && dns.CanonicalName(soa.Hdr.Name) == origin {
			return soa.Serial, nil
		}
	}
	if err := zp.Err(); err != nil {
		return 0, fmt.Errorf("parsing zone %s: %w", path, err)
	}
	return 0, fmt.Errorf("%w (%s)", ErrNoSOA, path)
}
