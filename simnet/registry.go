package simnet

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// tlds are the world's top-level domains: the zones the registry serves.
var tlds = []string{"test.", "example."}

const (
	// parentTTL is the TTL of the TLDs' own NS RRsets and name-server
	// addresses, and of stable delegations and glue in the parent zones.
	parentTTL = 172800
	// registryView is the vantage whose view of rotating data the registry
	// shares: a rotating parent NS set or glue address set is, at any
	// moment, what this vantage's resolver is told by the child.
	registryView = 0
)

func isTLD(name string) bool { return slices.Contains(tlds, name) }

// tldOf returns the world's TLD that name (an FQDN) is at or below, or ""
// when it is outside them.
func tldOf(name string) string {
	for _, tld := range tlds {
		if name == tld || strings.HasSuffix(name, "."+tld) {
			return tld
		}
	}
	return ""
}

// registrable returns the ancestor of name (or name itself) one label
// below tld, or "" when name is tld.
func registrable(name, tld string) string {
	if name == tld {
		return ""
	}
	rest := strings.TrimSuffix(name, "."+tld)
	return rest[strings.LastIndexByte(rest, '.')+1:] + "." + tld
}

// parentResponse is what the registry says about a name and type.
type parentResponse struct {
	rcode                         int
	authoritative                 bool
	answer, authority, additional []dns.RR
}

// parent answers name (FQDN, lower case) and qtype as the registry does at
// simulated time t: a referral (non-authoritative, NS in the authority
// section, glue for in-bailiwick name servers) for names at or below a
// registered domain; the TLD zone's own data, authoritatively, for the rest
// (NXDOMAIN for unregistered names); REFUSED outside the world's TLDs. It
// is a pure function of its arguments, like lookup.
func (m *model) parent(name string, qtype uint16, t time.Time) parentResponse {
	tld := tldOf(name)
	if tld == "" {
		return parentResponse{rcode: dns.RcodeRefused}
	}
	if reg := registrable(name, tld); reg != "" {
		if !m.registered(reg, t) {
			return authoritative(m.unregistered(name))
		}
		if ns := m.delegations[reg]; ns != nil {
			if name == reg && qtype == dns.TypeDS { // the parent side of the cut: no DS
				return authoritative(m.negativeIn(dns.RcodeSuccess, tld))
			}
			return m.referral(reg, ns, t)
		}
	}
	a := m.lookup(name, qtype, t, registryView)
	p := authoritative(a)
	if name == tld {
		for _, rr := range a.rrs {
			if ns, ok := rr.(*dns.NS); ok {
				p.additional = append(p.additional, m.glue(ns.Ns, t)...)
			}
		}
	}
	return p
}

// authoritative turns the zone data's answer into an authoritative response.
func authoritative(a answer) parentResponse {
	p := parentResponse{rcode: a.rcode, authoritative: true, answer: a.rrs}
	if a.soa != nil {
		p.authority = []dns.RR{a.soa}
	}
	return p
}

// referral delegates reg to this epoch's name servers of ns, with glue for
// the ones inside reg.
func (m *model) referral(reg string, ns *nsSet, t time.Time) parentResponse {
	var p parentResponse
	for _, host := range ns.pick(m.rand(reg, dns.TypeNS, epoch(t, ns.ttl), registryView)) {
		p.authority = append(p.authority, &dns.NS{Hdr: header(reg, dns.TypeNS, ns.ttl), Ns: host})
		if strings.HasSuffix(host, "."+reg) {
			p.additional = append(p.additional, m.glue(host, t)...)
		}
	}
	return p
}

// glue returns the A and AAAA records of a name-server host as the parent
// zone holds them at t: the current addresses, with the host's own TTL
// when they rotate and parentTTL when they are fixed.
func (m *model) glue(host string, t time.Time) []dns.RR {
	n := m.nodes[host]
	if n == nil {
		return nil
	}
	var out []dns.RR
	for _, s := range []struct {
		qtype uint16
		set   *addrSet
	}{{dns.TypeA, n.a}, {dns.TypeAAAA, n.aaaa}} {
		if s.set == nil {
			continue
		}
		set := s.set.at(t)
		ttl := uint32(parentTTL)
		if set.rotates() {
			ttl = set.ttl
		}
		for _, a := range m.addrs(host, s.qtype, set, t, registryView) {
			out = append(out, addrRR(host, a, ttl))
		}
	}
	return out
}

// registry is the authoritative server of the world's TLD zones: the
// parent side of every delegation. It does not recurse: RD is ignored
// (copied, never acted on) and RA is never set.
type registry struct{ w *World }

// ServeDNS answers one query as a TLD server would.
func (r *registry) ServeDNS(rw dns.ResponseWriter, req *dns.Msg) {
	resp := r.respond(req, rw.LocalAddr().Network() == "udp")
	if err := rw.WriteMsg(resp); err != nil {
		r.w.log.Debug("writing response", "server", "registry", "err", err)
	}
}

// respond builds the response to req; udp says whether it must fit the
// client's UDP payload size.
func (r *registry) respond(req *dns.Msg, udp bool) *dns.Msg {
	m, ok := reply(req)
	if ok {
		q := req.Question[0]
		qname := dns.CanonicalName(q.Name)
		p := r.w.model.parent(qname, q.Qtype, r.w.clock.Now())
		m.Rcode, m.Authoritative = p.rcode, p.authoritative
		m.Answer, m.Ns = p.answer, p.authority
		m.Extra = append(p.additional, m.Extra...) // the OPT record, if any, stays last
		for _, rr := range m.Answer {              // in the case the question was asked in
			if h := rr.Header(); h.Name == qname {
				h.Name = q.Name
			}
		}
		if r.w.log.Enabled(context.Background(), slog.LevelDebug) {
			r.w.log.Debug("query", "server", "registry", "name", q.Name, "type", dns.TypeToString[q.Qtype],
				"rcode", dns.RcodeToString[m.Rcode], "aa", m.Authoritative, "authority", len(m.Ns))
		}
	}
	fit(m, req, udp)
	return m
}
