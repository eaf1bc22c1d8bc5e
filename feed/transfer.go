package feed

import (
	"net"
	"time"

	"github.com/miekg/dns"
)

// chunkBytes bounds the uncompressed records of one transfer message, well
// below the 64 KiB a TCP message may hold.
const chunkBytes = 16 << 10

// tsigFudge is the fudge of the TSIG records this server writes (RFC 8945
// recommends 300 seconds).
const tsigFudge = 300

// ServeDNS answers one request: the zone's SOA, AXFR and IXFR of the zone;
// everything else is refused. Transfers need a valid TSIG signature by one
// of the configured keys; any request whose signature does not verify is
// answered NOTAUTH with the TSIG error.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		s.reply(w, r, new(dns.Msg).SetRcode(r, dns.RcodeFormatError))
		return
	}
	q := r.Question[0]
	qtype := dns.Type(q.Qtype).String()
	tsig := r.IsTsig()
	if tsig != nil && w.TsigStatus() != nil {
		code, reason := tsigError(w.TsigStatus())
		s.count.badTSIG.Add(1)
		s.log.Warn("feed: refused request with bad TSIG", "client", w.RemoteAddr().String(), "qtype", qtype,
			"key", tsig.Hdr.Name, "reason", reason)
		m := new(dns.Msg).SetRcode(r, dns.RcodeNotAuth)
		m.SetTsig(tsig.Hdr.Name, tsig.Algorithm, tsigFudge, time.Now().Unix())
		m.Extra[len(m.Extra)-1].(*dns.TSIG).Error = code
		w.WriteMsg(m)
		return
	}
	if r.Opcode != dns.OpcodeQuery || q.Qclass != dns.ClassINET || dns.CanonicalName(q.Name) != s.zone {
		s.refuse(w, r, "not this server's zone", "debug")
		return
	}
	switch q.Qtype {
	case dns.TypeSOA:
	case dns.TypeAXFR, dns.TypeIXFR:
		if tsig == nil {
			s.refuse(w, r, "transfer without TSIG", "warn")
			return
		}
	default:
		s.refuse(w, r, "only the zone's SOA and transfers are served", "debug")
		return
	}
	v := s.cur.Load()
	if v == nil { // nothing published yet: secondaries retry later
		s.reply(w, r, new(dns.Msg).SetRcode(r, dns.RcodeServerFailure))
		return
	}
	if q.Qtype == dns.TypeSOA {
		s.count.soa.Add(1)
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		m.Answer = []dns.RR{v.soa}
		s.reply(w, r, m)
		return
	}
	client := w.RemoteAddr().String()
	if _, isTCP := w.RemoteAddr().(*net.TCPAddr); !isTCP {
		if q.Qtype == dns.TypeAXFR {
			s.refuse(w, r, "AXFR over UDP", "debug")
			return
		}
		// RFC 1995 section 2: an IXFR answer that does not fit UDP is the
		// current SOA alone, which sends the client to TCP (or tells it
		// it is up to date).
		s.count.ixfrUpToDate.Add(1)
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		m.Answer = []dns.RR{v.soa}
		s.reply(w, r, m)
		return
	}
	var rrs []dns.RR
	kind := "AXFR"
	attrs := []any{"client", client, "key", tsig.Hdr.Name, "serial", v.serial()}
	if q.Qtype == dns.TypeAXFR {
		s.count.axfr.Add(1)
		rrs = v.axfr()
	} else {
		from, ok := ixfrSerial(r, s.zone)
		if !ok {
			s.reply(w, r, new(dns.Msg).SetRcode(r, dns.RcodeFormatError))
			return
		}
		var incremental bool
		rrs, incremental = v.ixfr(from)
		switch {
		case incremental:
			kind = "IXFR"
			s.count.ixfrInc.Add(1)
		case len(rrs) == 1:
			kind = "IXFR up to date"
			s.count.ixfrUpToDate.Add(1)
		default:
			kind = "IXFR as AXFR"
			s.count.ixfrFull.Add(1)
		}
		attrs = append(attrs, "from_serial", from)
	}
	err := s.transfer(w, r, rrs)
	attrs = append(attrs, "kind", kind, "records", len(rrs))
	if err != nil {
		s.log.Warn("feed: zone transfer failed", append(attrs, "err", err)...)
		return
	}
	s.log.Info("feed: zone transfer", attrs...)
}

// ixfrSerial returns the client's serial from the SOA in an IXFR request's
// authority section (RFC 1995 section 3).
func ixfrSerial(r *dns.Msg, zone string) (uint32, bool) {
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == zone {
			return soa.Serial, true
		}
	}
	return 0, false
}

// transfer writes rrs as a sequence of messages, each signed like the
// request (RFC 8945 section 5.3.1: the first with the request's MAC, the
// rest chained with timers only).
func (s *Server) transfer(w dns.ResponseWriter, r *dns.Msg, rrs []dns.RR) error {
	tsig := r.IsTsig()
	send := func(batch []dns.RR) error {
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		m.Compress = true
		m.Answer = batch
		if tsig != nil {
			m.SetTsig(tsig.Hdr.Name, tsig.Algorithm, tsigFudge, time.Now().Unix())
		}
		err := w.WriteMsg(m)
		w.TsigTimersOnly(true)
		return err
	}
	start, size := 0, 0
	for i, rr := range rrs {
		n := dns.Len(rr)
		if i > start && size+n > chunkBytes {
			if err := send(rrs[start:i]); err != nil {
				return err
			}
			start, size = i, 0
		}
		size += n
	}
	return send(rrs[start:])
}

// reply writes m, signed when the request was.
func (s *Server) reply(w dns.ResponseWriter, r, m *dns.Msg) {
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(dns.DefaultMsgSize, false)
	}
	if t := r.IsTsig(); t != nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, tsigFudge, time.Now().Unix())
	}
	w.WriteMsg(m)
}

// refuse answers REFUSED and logs why at level ("warn" or "debug").
func (s *Server) refuse(w dns.ResponseWriter, r *dns.Msg, reason, level string) {
	s.count.refused.Add(1)
	q := r.Question[0]
	attrs := []any{"client", w.RemoteAddr().String(), "qname", q.Name, "qtype", dns.Type(q.Qtype).String(), "reason", reason}
	if level == "warn" {
		s.log.Warn("feed: refused", attrs...)
	} else {
		s.log.Debug("feed: refused", attrs...)
	}
	s.reply(w, r, new(dns.Msg).SetRcode(r, dns.RcodeRefused))
}
