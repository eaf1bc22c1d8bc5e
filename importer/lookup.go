package importer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/seeds"
)

// lookup is one DNS lookup as a tool logged it: the question, who answered
// and when, and the response's sections. The active formats parse into it
// and share the mapping to observations.
type lookup struct {
	qname   string
	qtype   uint16
	time    time.Time
	vantage string
	rtt     time.Duration
	rcode   int
	err     obs.ErrClass
	flags   obs.Flags

	answer, authority, additional []dns.RR
}

// observations maps a lookup to what the crawler would have recorded for
// the same question, with domain (the canonical qname) as its name:
//
//   - the answer, normalised as the crawler normalises it (the records of
//     the CNAME chain, sorted) and capped at crawler.DefaultMaxRecords;
//   - the domain's NS set when the response carries it without being asked
//     (in the authority section, owned by the domain itself), as an NS
//     observation;
//   - the addresses of those name servers found in the additional section
//     (glue), as A and AAAA observations of each name server, as the
//     crawler's NS-host lookups record them.
func (l *lookup) observations(domain string) []obs.Observation {
	main := obs.Observation{Time: l.time, Vantage: l.vantage, Name: domain, QType: l.qtype,
		Rcode: l.rcode, Flags: l.flags, RTT: l.rtt, Err: l.err}
	if l.err != obs.OK {
		return []obs.Observation{main}
	}
	main.Answer = capped(crawler.NormalizeAnswer(domain, l.qtype, l.answer), &main.Flags)
	out := []obs.Observation{main}

	var nsSet []obs.Record
	if l.qtype == dns.TypeNS {
		nsSet = main.Answer
	} else if ns := crawler.NormalizeAnswer(domain, dns.TypeNS, l.authority); len(ns) > 0 {
		o := obs.Observation{Time: l.time, Vantage: l.vantage, Name: domain, QType: dns.TypeNS,
			Rcode: l.rcode, Flags: l.flags &^ obs.FlagCapped}
		o.Answer = capped(ns, &o.Flags)
		out = append(out, o)
		nsSet = o.Answer
	}
	if len(l.additional) == 0 {
		return out
	}
	var hosts []string
	for _, r := range nsSet {
		if r.Type == dns.TypeNS && r.Name == domain {
			hosts = append(hosts, r.Data)
		}
	}
	slices.Sort(hosts)
	for _, host := range slices.Compact(hosts) {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			glue := crawler.NormalizeAnswer(host, qt, l.additional)
			if len(glue) == 0 {
				continue
			}
			o := obs.Observation{Time: l.time, Vantage: l.vantage, Name: host, QType: qt,
				Rcode: l.rcode, Flags: l.flags &^ obs.FlagCapped}
			o.Answer = capped(glue, &o.Flags)
			out = append(out, o)
		}
	}
	return out
}

// capped cuts an answer to crawler.DefaultMaxRecords records and flags it.
func capped(rs []obs.Record, flags *obs.Flags) []obs.Record {
	if len(rs) > crawler.DefaultMaxRecords {
		*flags |= obs.FlagCapped
		return rs[:crawler.DefaultMaxRecords:crawler.DefaultMaxRecords]
	}
	return rs
}

// probe turns one lookup into a probe of its own.
func (l *lookup) probe() (obs.Probe, error) {
	domain, err := domainName(l.qname)
	if err != nil {
		return obs.Probe{}, err
	}
	return obs.Probe{Domain: domain, Vantage: l.vantage, Start: l.time, Observations: l.observations(domain)}, nil
}

// domainName checks and canonicalises the name a lookup asked for.
func domainName(s string) (string, error) {
	name, err := seeds.Normalize(s)
	if err != nil {
		return "", fmt.Errorf("name %q: %v", s, err)
	}
	return name, nil
}

// canonName is a record name or target as observations hold it: lower
// case, without the trailing dot.
func canonName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// vantageName is a resolver address as the crawler names vantages
// (host:port, port 53 by default) when it is one, else s as it is.
func vantageName(s string) string {
	if v, err := obs.ParseVantage(s); err == nil {
		return v
	}
	return strings.TrimSpace(s)
}

// qtypeOf parses a type mnemonic ("A", "aaaa") or RFC 3597 form ("TYPE65").
func qtypeOf(s string) (uint16, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if t, ok := dns.StringToType[s]; ok {
		return t, true
	}
	if n, ok := strings.CutPrefix(s, "TYPE"); ok {
		var v uint16
		if _, err := fmt.Sscanf(n, "%d", &v); err == nil && fmt.Sprint(v) == n {
			return v, true
		}
	}
	return 0, false
}

// typeName is the inverse of qtypeOf.
func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

// rrOf builds a resource record of one of the types fluxwatch keeps (A,
// AAAA, CNAME, NS) from its parts as JSON formats give them. Other types
// return nil and no error.
func rrOf(name, typ string, ttl uint32, data string) (dns.RR, error) {
	t, ok := qtypeOf(typ)
	if !ok {
		return nil, nil
	}
	if t != dns.TypeA && t != dns.TypeAAAA && t != dns.TypeCNAME && t != dns.TypeNS {
		return nil, nil
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" || strings.ContainsAny(name, unsafeText) {
		return nil, fmt.Errorf("record name %q is not a domain name", name)
	}
	if strings.ContainsAny(strings.TrimSpace(data), unsafeText) {
		return nil, fmt.Errorf("record %s %s %q: bad data", name, typeName(t), data)
	}
	rr, err := parseRR(fmt.Sprintf("%s %d IN %s %s", dns.Fqdn(name), ttl, typeName(t), fqdnData(t, data)))
	if err != nil || rr == nil {
		return nil, fmt.Errorf("record %s %s %q: bad data", name, typeName(t), data)
	}
	return rr, nil
}

// unsafeText are characters that no name or address holds and that
// presentation format gives a meaning (separators, comments, directives).
const unsafeText = " \t\r\n;()$\"\\"

// fqdnData makes a name in record data absolute, so that dns.NewRR does
// not append an origin to it.
func fqdnData(t uint16, data string) string {
	data = strings.TrimSpace(data)
	if (t == dns.TypeNS || t == dns.TypeCNAME) && data != "" {
		return dns.Fqdn(data)
	}
	return data
}

// parseRR parses one record in presentation format. Unlike dns.NewRR it
// refuses zone file directives: a log line must never make the importer
// read another file ($INCLUDE) or generate records ($GENERATE).
func parseRR(s string) (dns.RR, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "$") {
		return nil, fmt.Errorf("zone file directive %q, not a record", abbreviate(s))
	}
	zp := dns.NewZoneParser(strings.NewReader(s+"\n"), ".", "")
	zp.SetDefaultTTL(3600)
	rr, _ := zp.Next()
	if err := zp.Err(); err != nil {
		msg, _, _ := strings.Cut(err.Error(), " at line: ")
		return nil, errors.New(msg)
	}
	return rr, nil
}
