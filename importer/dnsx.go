package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
)

// The dnsx format is what `dnsx -json` writes, one host a line:
//
//	{"host":"flux.example","ttl":180,"resolver":["127.0.0.1:53"],"a":["192.0.2.1"],
//	 "all":["flux.example.\t180\tIN\tA\t192.0.2.1"],"status_code":"NOERROR",
//	 "timestamp":"2026-11-27T09:00:01.123Z"}
//
// A line is one probe through the resolver that answered (the last one
// listed), at its timestamp. dnsx puts the records of every section of
// every response in one line, so the records are taken, with their owner
// names and TTLs, from "all" (recent dnsx) or the "raw" response text
// (older dnsx) when present, and there is an observation for each of A,
// AAAA and NS that the domain itself has records of (the glue of an NS
// answer is no A answer); without either, the lists are taken as they are:
// the CNAME chain in order, then the addresses and name servers at its
// end, all with the line's ttl. A line with no such records is the A lookup
// (dnsx's default): a CNAME lookup if it holds the domain's CNAME, else an
// empty or failed A answer with its status_code.

type dnsxLine struct {
	Host       string          `json:"host"`
	TTL        uint32          `json:"ttl"`
	Resolver   json.RawMessage `json:"resolver"`
	A          []string        `json:"a"`
	AAAA       []string        `json:"aaaa"`
	CNAME      []string        `json:"cname"`
	NS         []string        `json:"ns"`
	All        []string        `json:"all"`
	Raw        string          `json:"raw"`
	StatusCode string          `json:"status_code"`
	Timestamp  flexTime        `json:"timestamp"`
}

func parseDNSX(b []byte, opts Options) ([]obs.Probe, error) {
	var x dnsxLine
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, err
	}
	if x.Host == "" {
		return nil, errors.New(`no "host"`)
	}
	domain, err := domainName(x.Host)
	if err != nil {
		return nil, err
	}
	if x.Timestamp.IsZero() {
		return nil, errors.New(`no "timestamp"`)
	}
	base := lookup{qname: domain, time: x.Timestamp.Time, vantage: DNSX, rcode: dns.RcodeSuccess}
	if v := dnsxResolver(x.Resolver); v != "" {
		base.vantage = v
	}
	if x.StatusCode != "" {
		rc, ok := dns.StringToRcode[x.StatusCode]
		if !ok {
			return nil, fmt.Errorf("unknown status_code %q", x.StatusCode)
		}
		base.rcode = rc
	}
	base.err = crawler.RcodeClass(base.rcode)
	var lookups []lookup
	add := func(qtype uint16) {
		l := base
		l.qtype = qtype
		lookups = append(lookups, l)
	}
	if base.err != obs.OK {
		add(dns.TypeA)
		return groupByVantage(domain, lookups, opts), nil
	}
	rrs, fromText, err := x.records(domain)
	if err != nil {
		return nil, err
	}
	base.answer, base.additional = rrs, rrs
	for _, t := range []struct {
		qtype uint16
		list  []string
	}{{dns.TypeA, x.A}, {dns.TypeAAAA, x.AAAA}, {dns.TypeNS, x.NS}} {
		// dnsx lists the records of every section together: with the
		// records themselves at hand, a type was asked only if the domain
		// has records of it (an NS answer's glue is no A answer).
		if fromText && hasType(crawler.NormalizeAnswer(domain, t.qtype, rrs), t.qtype) || !fromText && len(t.list) > 0 {
			add(t.qtype)
		}
	}
	if len(lookups) == 0 {
		if hasType(crawler.NormalizeAnswer(domain, dns.TypeCNAME, rrs), dns.TypeCNAME) {
			add(dns.TypeCNAME)
		} else {
			add(dns.TypeA)
		}
	}
	return groupByVantage(domain, lookups, opts), nil
}

func hasType(rs []obs.Record, t uint16) bool {
	return slices.ContainsFunc(rs, func(r obs.Record) bool { return r.Type == t })
}

// dnsxResolver returns the last resolver of a list (or a single string).
func dnsxResolver(raw json.RawMessage) string {
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return vantageName(list[len(list)-1])
	}
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return vantageName(one)
	}
	return ""
}

// records returns the line's records of the types fluxwatch keeps, and
// whether they came from record text ("all", "raw") rather than the lists.
func (x *dnsxLine) records(domain string) ([]dns.RR, bool, error) {
	var texts []string
	switch {
	case len(x.All) > 0:
		texts = x.All
	case x.Raw != "":
		texts = strings.Split(x.Raw, "\n")
	}
	if texts != nil {
		var out []dns.RR
		for _, t := range texts {
			t = strings.TrimSpace(t)
			if t == "" || strings.HasPrefix(t, ";") {
				continue // the OPT pseudosection and section headers
			}
			rr, err := parseRR(t)
			if err != nil {
				return nil, true, fmt.Errorf("bad record %q: %v", abbreviate(t), err)
			}
			if rr != nil {
				out = append(out, rr)
			}
		}
		return out, true, nil
	}
	var out []dns.RR
	add := func(name, typ, data string) error {
		rr, err := rrOf(name, typ, x.TTL, data)
		if err == nil && rr != nil {
			out = append(out, rr)
		}
		return err
	}
	owner := domain
	for _, c := range x.CNAME {
		if err := add(owner, "CNAME", c); err != nil {
			return nil, false, err
		}
		owner = canonName(c)
	}
	for _, set := range []struct {
		typ  string
		data []string
	}{{"A", x.A}, {"AAAA", x.AAAA}, {"NS", x.NS}} {
		for _, d := range set.data {
			if err := add(owner, set.typ, d); err != nil {
				return nil, false, err
			}
		}
	}
	return out, false, nil
}
