package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// The value encodings below are fluxwatch's own: compact, versioned by the
// schema number in the meta bucket, and decoded defensively (a damaged value
// is an error, never a panic).

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt value")

// encoder appends varints and bytes to a buffer.
type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) byte1(v byte)     { e.b = append(e.b, v) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

// decoder reads what encoder wrote; the first failure sticks in err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: short or bad %s", errCorrupt, what)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// fixed returns the next n bytes (zeros after a failure).
func (d *decoder) fixed(what string, n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail(what)
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// micros reads a duration stored in whole microseconds; one too long for a
// time.Duration is corrupt (it would wrap around to a negative duration).
func (d *decoder) micros(what string) time.Duration {
	v := d.uvarint(what)
	if v > math.MaxInt64/uint64(time.Microsecond) {
		d.fail(what)
		return 0
	}
	return time.Duration(v) * time.Microsecond
}

// count reads a length that must be plausible for the remaining input: each
// element takes at least one byte.
func (d *decoder) count(what string) int {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return 0
	}
	return int(n)
}

// Record data kinds inside an encoded answer set.
const (
	dataAddr = 0 // 4 or 16 address bytes
	dataName = 1 // interned name id
	dataText = 2 // presentation text
)

// interner maps strings to small ids and back. Storage keeps one for the
// names that appear inside answers (name servers, CNAME targets) and one for
// vantages.
type interner interface {
	id(s string) (uint64, error)
	str(id uint64) (string, error)
}

// encodeSet encodes sorted records without their TTLs; the TTLs go with each
// observation (one per RRset), so the same records seen with different TTLs
// share one stored set. Owner names equal to qname are stored as id 0, so
// the same addresses under different names share a set too, and the names
// of the domains themselves are never interned.
func encodeSet(rs []obs.Record, qname string, names interner, dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	e.uvarint(uint64(len(rs)))
	for _, r := range rs {
		var id uint64
		if r.Name != qname {
			var err error
			if id, err = names.id(r.Name); err != nil {
				return nil, err
			}
		}
		e.uvarint(id)
		e.uvarint(uint64(r.Type))
		switch r.Type {
		case dns.TypeA, dns.TypeAAAA:
			a, err := netip.ParseAddr(r.Data)
			if err != nil {
				return nil, fmt.Errorf("record %s %s: bad address %q", r.Name, dns.TypeToString[r.Type], r.Data)
			}
			e.byte1(dataAddr)
			e.bytes(a.AsSlice())
		case dns.TypeNS, dns.TypeCNAME, dns.TypeDNAME, dns.TypePTR:
			id, err := names.id(r.Data)
			if err != nil {
				return nil, err
			}
			e.byte1(dataName)
			e.uvarint(id)
		default:
			e.byte1(dataText)
			e.str(r.Data)
		}
	}
	return e.b, nil
}

// decodeSet decodes a set; owners stored as id 0 come back as "", for
// withTTLs to fill in with the observation's name.
func decodeSet(p []byte, names interner) ([]obs.Record, error) {
	d := decoder{b: p}
	n := d.count("set length")
	rs := make([]obs.Record, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var r obs.Record
		var err error
		if id := d.uvarint("record name"); id != 0 && d.err == nil {
			if r.Name, err = names.str(id); err != nil {
				return nil, err
			}
		}
		r.Type = uint16(d.uvarint("record type"))
		switch d.byte1("record kind") {
		case dataAddr:
			a, ok := netip.AddrFromSlice(d.bytes("address"))
			if !ok && d.err == nil {
				d.fail("address")
			}
			r.Data = a.String()
		case dataName:
			id := d.uvarint("record data")
			if d.err == nil {
				if r.Data, err = names.str(id); err != nil {
					return nil, err
				}
			}
		case dataText:
			r.Data = string(d.bytes("record text"))
		default:
			d.fail("record kind")
		}
		rs = append(rs, r)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("set (trailing bytes)")
	}
	return rs, d.err
}

// rrsetCount returns how many RRsets (runs of equal name and type) sorted
// records hold; one TTL is stored for each.
func rrsetCount(rs []obs.Record) int {
	n := 0
	for i := range rs {
		if i == 0 || rs[i].Name != rs[i-1].Name || rs[i].Type != rs[i-1].Type {
			n++
		}
	}
	return n
}

// An observation's rcode, error class and flags share one varint:
// rcode<<12 | err<<8 | flags, which is one byte for every answer without an
// error. obs.Flags is a uint8; error classes must stay below 16 (a test
// checks).
const (
	flagBits = 8
	errBits  = 4
)

// storedObs is an observation as the probe encoding holds it: the answer as a
// set id plus one TTL per RRset.
type storedObs struct {
	offset time.Duration // from the probe's start
	nameID uint64        // 0: the probe's domain itself
	qtype  uint16
	rcode  uint8
	flags  obs.Flags
	err    obs.ErrClass
	rtt    time.Duration
	setID  uint64 // 0: empty answer, or the answer is inline
	// inline is the answer when it is one A or AAAA record for the name
	// asked (most answers): stored in the probe, not as a set.
	inline netip.Addr
	ttls   []uint32
}

// The answer field of an observation: setID<<2 for a stored set (0: no
// answer), or a tag for an inline address followed by its bytes.
const (
	answerSet     = 0
	answerInline4 = 1 // an A record, 4 bytes follow
	answerInline6 = 2 // an AAAA record, 16 bytes follow
)

func encodeProbe(os []storedObs, dst []byte) []byte {
	e := encoder{b: dst}
	e.uvarint(uint64(len(os)))
	for _, o := range os {
		e.uvarint(uint64(max(o.offset, 0) / time.Microsecond))
		e.uvarint(o.nameID)
		e.uvarint(uint64(o.qtype))
		e.uvarint((uint64(o.rcode)<<errBits|uint64(o.err))<<flagBits | uint64(o.flags))
		e.uvarint(uint64(max(o.rtt, 0) / time.Microsecond))
		switch {
		case o.inline.Is4():
			e.uvarint(answerInline4)
			e.b = append(e.b, o.inline.AsSlice()...)
		case o.inline.IsValid():
			e.uvarint(answerInline6)
			a := o.inline.As16()
			e.b = append(e.b, a[:]...)
		default:
			e.uvarint(o.setID<<2 | answerSet)
		}
		e.uvarint(uint64(len(o.ttls)))
		for _, t := range o.ttls {
			e.uvarint(uint64(t))
		}
	}
	return e.b
}

func decodeProbe(p []byte) ([]storedObs, error) {
	d := decoder{b: p}
	n := d.count("observation count")
	out := make([]storedObs, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var o storedObs
		o.offset = d.micros("time offset")
		o.nameID = d.uvarint("name")
		o.qtype = uint16(d.uvarint("qtype"))
		fe := d.uvarint("rcode and flags")
		if fe>>(flagBits+errBits) > 0xff {
			d.fail("rcode")
		}
		o.flags, o.err, o.rcode = obs.Flags(fe), obs.ErrClass(fe>>flagBits&(1<<errBits-1)), uint8(fe>>(flagBits+errBits))
		o.rtt = d.micros("rtt")
		switch ref := d.uvarint("answer"); {
		case ref&3 == answerSet:
			o.setID = ref >> 2
		case ref == answerInline4:
			o.inline = netip.AddrFrom4([4]byte(d.fixed("address", 4)))
		case ref == answerInline6:
			o.inline = netip.AddrFrom16([16]byte(d.fixed("address", 16)))
		default:
			d.fail("answer")
		}
		nt := d.count("ttl count")
		if nt > 0 {
			o.ttls = make([]uint32, nt)
			for j := range o.ttls {
				o.ttls[j] = uint32(d.uvarint("ttl"))
			}
		}
		out = append(out, o)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("probe (trailing bytes)")
	}
	return out, d.err
}

// probeKey is domain id, start time and vantage id, big-endian, so that one
// domain's history is one contiguous range in time order.
func probeKey(domainID uint32, start time.Time, vantageID uint32) []byte {
	return appendProbeKey(make([]byte, 0, probeKeySize), domainID, start, vantageID)
}

// probeKeySize is the length of a probe key: domain id, start, vantage id.
const probeKeySize = 16

func appendProbeKey(dst []byte, domainID uint32, start time.Time, vantageID uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, domainID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(start.UnixNano()))
	return binary.BigEndian.AppendUint32(dst, vantageID)
}

func parseProbeKey(k []byte) (domainID uint32, start time.Time, vantageID uint32, ok bool) {
	if len(k) != 16 {
		return 0, time.Time{}, 0, false
	}
	return binary.BigEndian.Uint32(k[0:4]), time.Unix(0, int64(binary.BigEndian.Uint64(k[4:12]))).UTC(), binary.BigEndian.Uint32(k[12:16]), true
}

func u32key(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
