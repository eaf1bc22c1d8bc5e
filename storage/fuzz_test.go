package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// FuzzProbeCodec checks the probe encoding two ways: any bytes decode to an
// error wrapping errCorrupt or to observations that survive a re-encoding
// unchanged, and observations built from the fuzzed values (within what the
// encoding can hold) come back from a round trip exactly.
func FuzzProbeCodec(f *testing.F) {
	seed := []storedObs{
		{offset: 3 * time.Millisecond, qtype: dns.TypeA, flags: obs.FlagRA, rtt: 2 * time.Millisecond, setID: 7, ttls: []uint32{60}},
		{offset: 6 * time.Millisecond, nameID: 4, qtype: dns.TypeAAAA, rcode: dns.RcodeServerFailure, err: obs.ServFail},
	}
	f.Add(encodeProbe(seed, nil), int64(3000), uint64(0), uint16(dns.TypeA), uint8(0), uint8(obs.FlagRA), int64(2000), uint64(7), []byte{0, 0, 0, 60})
	f.Add([]byte{}, int64(-1), uint64(math.MaxUint64), uint16(math.MaxUint16), uint8(255), uint8(255), int64(math.MaxInt64), uint64(math.MaxUint64), []byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 1, 0, 0, 0, 0, 0}, int64(math.MinInt64), uint64(1), uint16(2), uint8(3), uint8(0x8f), int64(-5), uint64(0), []byte(nil))
	f.Add([]byte{2, 0}, int64(1), uint64(1), uint16(1), uint8(1), uint8(1), int64(1), uint64(1), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, raw []byte, offset int64, nameID uint64, qtype uint16, rcode, flagsErr uint8, rtt int64, setID uint64, ttlBytes []byte) {
		// (a) Arbitrary bytes.
		got, err := decodeProbe(raw)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeProbe error %v does not wrap errCorrupt", err)
			}
		} else {
			again, err := decodeProbe(encodeProbe(got, nil))
			if err != nil {
				t.Fatalf("re-encoded %+v: %v", got, err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("decoded %+v, re-encoded and decoded %+v", got, again)
			}
		}

		// (b) Observations built from the fuzzed values, clamped to what the
		// encoding holds: non-negative whole microseconds, four bits of flags
		// and an error class that exists.
		micros := func(v int64) time.Duration {
			if v < 0 {
				v = -(v + 1)
			}
			return time.Duration(v%(math.MaxInt64/int64(time.Microsecond)+1)) * time.Microsecond
		}
		var ttls []uint32
		for p := ttlBytes; len(p) >= 4; p = p[4:] {
			ttls = append(ttls, binary.BigEndian.Uint32(p))
		}
		o := storedObs{
			offset: micros(offset),
			nameID: nameID,
			qtype:  qtype,
			rcode:  rcode,
			flags:  obs.Flags(flagsErr & 0x0f),
			err:    obs.ErrClass(flagsErr>>4) % obs.ErrClass(len(obs.ErrClasses())),
			rtt:    micros(rtt),
			setID:  setID >> 2, // set ids have 62 bits
			ttls:   ttls,
		}
		// A second observation with no TTLs and the values shuffled, so
		// that observation boundaries are exercised too.
		o2 := storedObs{offset: o.rtt, nameID: setID, qtype: uint16(rcode), rcode: uint8(qtype), flags: o.flags ^ 0x0f, err: obs.ErrClass(flagsErr) % 9, rtt: o.offset}
		// The second answer is inline when the fuzzed TTL bytes make an
		// address, else a set.
		switch len(ttlBytes) {
		case 4:
			o2.inline = netip.AddrFrom4([4]byte(ttlBytes))
		case 16:
			o2.inline = netip.AddrFrom16([16]byte(ttlBytes))
		default:
			o2.setID = nameID >> 2
		}
		want := []storedObs{o, o2}
		back, err := decodeProbe(encodeProbe(want, []byte("prefix")[:0]))
		if err != nil {
			t.Fatalf("decoding %+v: %v", want, err)
		}
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, want)
		}
	})
}

// fuzzNames is an in-memory interner: unknown strings get the next id,
// unknown ids are an error.
type fuzzNames struct {
	ids  map[string]uint64
	strs map[uint64]string
}

var _ interner = (*fuzzNames)(nil)

var errUnknownID = errors.New("unknown name id")

func newFuzzNames(names ...string) *fuzzNames {
	n := &fuzzNames{ids: map[string]uint64{}, strs: map[uint64]string{}}
	for _, s := range names {
		n.id(s)
	}
	return n
}

func (n *fuzzNames) id(s string) (uint64, error) {
	if id, ok := n.ids[s]; ok {
		return id, nil
	}
	id := uint64(len(n.ids) + 1)
	n.ids[s], n.strs[id] = id, s
	return id, nil
}

func (n *fuzzNames) str(id uint64) (string, error) {
	if s, ok := n.strs[id]; ok {
		return s, nil
	}
	return "", fmt.Errorf("name %d: %w", id, errUnknownID)
}

// FuzzSetCodec checks that any bytes decode to an error (a corrupt value or
// an id the interner does not know) or to records that, when they can be
// encoded again, decode to the same records.
func FuzzSetCodec(f *testing.F) {
	names := newFuzzNames("ns1.host.test", "edge.cdn.test")
	set := []obs.Record{
		{Name: "flux.test", Type: dns.TypeA, Data: "192.0.2.1"},
		{Name: "flux.test", Type: dns.TypeAAAA, Data: "2001:db8::1"},
		{Name: "flux.test", Type: dns.TypeCNAME, Data: "edge.cdn.test"},
		{Name: "flux.test", Type: dns.TypeNS, Data: "ns1.host.test"},
		{Name: "flux.test", Type: dns.TypeTXT, Data: "v=spf1 -all"},
		{Name: "ns1.host.test", Type: dns.TypeA, Data: "198.51.100.53"},
	}
	p, err := encodeSet(set, "flux.test", names, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 0, 1, dataAddr, 3, 1, 2, 3})
	f.Add([]byte{1, 9, 1, dataName, 9})
	f.Add([]byte{1, 0, 16, dataText, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte("\x01\x02\x01\x02\x03::0")) // an A record held as text
	f.Fuzz(func(t *testing.T, p []byte) {
		names := newFuzzNames("ns1.host.test", "edge.cdn.test")
		rs, err := decodeSet(p, names)
		if err != nil {
			if !errors.Is(err, errCorrupt) && !errors.Is(err, errUnknownID) {
				t.Fatalf("decodeSet error %v wraps neither errCorrupt nor the interner's error", err)
			}
			return
		}
		// decodeSet is lenient where encodeSet is strict (an A record held as
		// text "::0" decodes as such, and is encoded again as the address
		// "::"), so the round trip is checked on the form encodeSet writes.
		// Owners decoded as "" stand for the observation's own name.
		enc, err := encodeSet(rs, "", names, nil)
		if err != nil {
			return // e.g. an A record held as text that is no address
		}
		canon, err := decodeSet(enc, names)
		if err != nil {
			t.Fatalf("re-encoded %+v: %v", rs, err)
		}
		enc2, err := encodeSet(canon, "", names, nil)
		if err != nil {
			t.Fatalf("encoding %+v again: %v", canon, err)
		}
		if string(enc2) != string(enc) {
			t.Fatalf("%+v encodes as %x, then as %x", canon, enc, enc2)
		}
		again, err := decodeSet(enc2, names)
		if err != nil || !reflect.DeepEqual(again, canon) {
			t.Fatalf("encoded %+v, decoded %+v, %v", canon, again, err)
		}
	})
}
