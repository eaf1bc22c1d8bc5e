package crawler

import (
	"encoding/binary"
	"net"

	"github.com/miekg/dns"
)

// unpackAnswer reads the responses a crawl mostly gets without the general
// parser's work: the question the query asked, answer records of types A,
// AAAA, CNAME and NS owned by that name (a pointer to the question, or the
// name spelled out), nothing in the authority section,
// and at most an OPT record in the additional section. The question and
// the owners are then the name asked, whose string is reused rather than
// built again. The result is what (*dns.Msg).Unpack makes of the same
// bytes (FuzzUnpackAnswer holds it to that). For anything else it returns
// false, and the caller unpacks the general way.
func unpackAnswer(pkt []byte, asked string) (*dns.Msg, bool) {
	if len(pkt) < 12 {
		return nil, false
	}
	bits := binary.BigEndian.Uint16(pkt[2:])
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]),
		binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 || ns != 0 || ar > 1 {
		return nil, false
	}
	off, ok := sameWireName(pkt, 12, asked)
	if !ok || off+4 > len(pkt) {
		return nil, false
	}
	m := &dns.Msg{
		MsgHdr: dns.MsgHdr{
			Id:                 binary.BigEndian.Uint16(pkt),
			Response:           bits&(1<<15) != 0,
			Opcode:             int(bits>>11) & 0xF,
			Authoritative:      bits&(1<<10) != 0,
			Truncated:          bits&(1<<9) != 0,
			RecursionDesired:   bits&(1<<8) != 0,
			RecursionAvailable: bits&(1<<7) != 0,
			Zero:               bits&(1<<6) != 0,
			AuthenticatedData:  bits&(1<<5) != 0,
			CheckingDisabled:   bits&(1<<4) != 0,
			Rcode:              int(bits & 0xF),
		},
		Question: []dns.Question{{Name: asked, Qtype: binary.BigEndian.Uint16(pkt[off:]), Qclass: binary.BigEndian.Uint16(pkt[off+2:])}},
	}
	off += 4
	for range an {
		// The owner must be the question's name: a pointer to it, or
		// spelled out again.
		if off+2 <= len(pkt) && pkt[off] == 0xC0 && pkt[off+1] == 12 {
			off += 2
		} else if off, ok = sameWireName(pkt, off, asked); !ok {
			return nil, false
		}
		if off+10 > len(pkt) {
			return nil, false
		}
		h := dns.RR_Header{Name: asked, Rrtype: binary.BigEndian.Uint16(pkt[off:]), Class: binary.BigEndian.Uint16(pkt[off+2:]),
			Ttl: binary.BigEndian.Uint32(pkt[off+4:]), Rdlength: binary.BigEndian.Uint16(pkt[off+8:])}
		off += 10
		end := off + int(h.Rdlength)
		if end > len(pkt) {
			return nil, false
		}
		var rr dns.RR
		switch {
		case h.Rrtype == dns.TypeA && h.Rdlength == net.IPv4len:
			rr = &dns.A{Hdr: h, A: net.IP(append(make([]byte, 0, net.IPv4len), pkt[off:end]...))}
		case h.Rrtype == dns.TypeAAAA && h.Rdlength == net.IPv6len:
			rr = &dns.AAAA{Hdr: h, AAAA: net.IP(append(make([]byte, 0, net.IPv6len), pkt[off:end]...))}
		case (h.Rrtype == dns.TypeCNAME || h.Rrtype == dns.TypeNS) && h.Rdlength > 0:
			var err error
			var next int
			// Like Unpack, read the record within its own length: a
			// pointer past it is refused.
			if rr, next, err = dns.UnpackRRWithHeader(h, pkt[:end], off); err != nil || next != end {
				return nil, false
			}
		default:
			return nil, false
		}
		m.Answer = append(m.Answer, rr)
		off = end
	}
	if ar == 1 {
		// OPT: root owner, type 41; its class and TTL carry EDNS fields.
		if off+11 > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != dns.TypeOPT {
			return nil, false
		}
		h := dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: binary.BigEndian.Uint16(pkt[off+3:]),
			Ttl: binary.BigEndian.Uint32(pkt[off+5:]), Rdlength: binary.BigEndian.Uint16(pkt[off+9:])}
		off += 11
		end := off + int(h.Rdlength)
		if end > len(pkt) {
			return nil, false
		}
		opt := &dns.OPT{Hdr: h}
		if h.Rdlength > 0 { // options
			rr, next, err := dns.UnpackRRWithHeader(h, pkt[:end], off)
			if err != nil || next != end {
				return nil, false
			}
			if opt, ok = rr.(*dns.OPT); !ok {
				return nil, false
			}
		}
		m.Extra = []dns.RR{opt}
		m.Rcode |= opt.ExtendedRcode()
		off = end
	}
	if off != len(pkt) {
		return nil, false
	}
	return m, true
}

// sameWireName says whether the uncompressed name at pkt[off:] spells
// fqdn byte for byte, and where it ends. Only letters, digits, '-' and '_'
// count: a name with anything the presentation format escapes is left to
// the general parser, and so is one over 255 octets, which it refuses.
func sameWireName(pkt []byte, off int, fqdn string) (int, bool) {
	if fqdn == "" || fqdn[len(fqdn)-1] != '.' {
		return 0, false
	}
	if fqdn == "." {
		return off + 1, off < len(pkt) && pkt[off] == 0
	}
	i := 0 // position in fqdn
	budget := 255
	for {
		if off >= len(pkt) {
			return 0, false
		}
		n := int(pkt[off])
		off++
		if n == 0 {
			return off, i == len(fqdn)
		}
		if budget -= n + 1; budget <= 0 || n > 63 || off+n > len(pkt) || i+n >= len(fqdn) || fqdn[i+n] != '.' {
			return 0, false
		}
		for _, c := range pkt[off : off+n] {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') || fqdn[i] != c {
				return 0, false
			}
			i++
		}
		i++ // the dot
		off += n
	}
}
