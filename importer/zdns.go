package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
)

// The zdns format is zdns's JSON output, one name a line, from its A, AAAA
// and NS modules (results of other modules are skipped). Both layouts are
// read:
//
//	zdns 2: {"name":…, "results":{"A":{"data":{…}, "status":…, "timestamp":…, "duration":…}}}
//	zdns 1: {"name":…, "status":…, "timestamp":…, "data":{…}}
//
// In zdns 1 the module is not named: the type is that of the answer
// records (A when there are none). The data of a result is a response
// ({"answers", "authorities", "additionals", "resolver", "flags"}), whose
// resolver is the vantage; with --all-nameservers it is a list of those,
// one per name server asked, or (iterative) {"per_layer_responses":
// {zone: [{"type", "nameserver", "status", "result"}]}}, of which the
// responses of the zone closest to the name are kept. Each name server is
// then a vantage of its own. A line's results through the same vantage
// form one probe.

type zdnsLine struct {
	Name    string                     `json:"name"`
	Results map[string]json.RawMessage `json:"results"`
	// zdns 1 keeps one result at the top level.
	zdnsResult
}

type zdnsResult struct {
	Status    string          `json:"status"`
	Timestamp flexTime        `json:"timestamp"`
	Duration  float64         `json:"duration"`
	Data      json.RawMessage `json:"data"`
}

type zdnsResponse struct {
	Answers     []zdnsRecord `json:"answers"`
	Authorities []zdnsRecord `json:"authorities"`
	Additionals []zdnsRecord `json:"additionals"`
	Resolver    string       `json:"resolver"`
	Flags       *struct {
		Authoritative      bool `json:"authoritative"`
		Truncated          bool `json:"truncated"`
		RecursionAvailable bool `json:"recursion_available"`
		ErrorCode          int  `json:"error_code"`
	} `json:"flags"`
}

// zdnsRecord is one record; zdns 2 names its data "answer", zdns 1 "data".
type zdnsRecord struct {
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	TTL    uint32          `json:"ttl"`
	Answer json.RawMessage `json:"answer"`
	Data   json.RawMessage `json:"data"`
}

type zdnsLayered struct {
	Layers map[string][]struct {
		Type       string       `json:"type"`
		Nameserver string       `json:"nameserver"`
		Status     string       `json:"status"`
		Result     zdnsResponse `json:"result"`
	} `json:"per_layer_responses"`
}

func parseZDNS(b []byte, opts Options) ([]obs.Probe, error) {
	var line zdnsLine
	if err := json.Unmarshal(b, &line); err != nil {
		return nil, err
	}
	if line.Name == "" {
		return nil, errors.New(`no "name"`)
	}
	// The name may carry a name server: "example.com,1.1.1.1".
	qname, _, _ := strings.Cut(line.Name, ",")
	domain, err := domainName(qname)
	if err != nil {
		return nil, err
	}
	var lookups []lookup
	if line.Results == nil {
		ls, err := zdnsLookups(domain, 0, line.zdnsResult)
		if err != nil {
			return nil, err
		}
		lookups = ls
	} else {
		modules := make([]string, 0, len(line.Results))
		for m := range line.Results {
			modules = append(modules, m)
		}
		slices.Sort(modules)
		for _, m := range modules {
			qtype, ok := qtypeOf(m)
			if !ok || (qtype != dns.TypeA && qtype != dns.TypeAAAA && qtype != dns.TypeNS) {
				continue
			}
			var res zdnsResult
			if err := json.Unmarshal(line.Results[m], &res); err != nil {
				return nil, fmt.Errorf("result %s: %v", m, jsonReason(err))
			}
			ls, err := zdnsLookups(domain, qtype, res)
			if err != nil {
				return nil, fmt.Errorf("result %s: %v", m, err)
			}
			lookups = append(lookups, ls...)
		}
	}
	return groupByVantage(domain, lookups, opts), nil
}

// groupByVantage makes one probe of the lookups of each vantage, in the
// order the vantages first appear.
func groupByVantage(domain string, lookups []lookup, opts Options) []obs.Probe {
	var out []obs.Probe
	for _, l := range lookups {
		if opts.Vantage != "" {
			l.vantage = opts.Vantage
		}
		i := slices.IndexFunc(out, func(p obs.Probe) bool { return p.Vantage == l.vantage })
		if i < 0 {
			out = append(out, obs.Probe{Domain: domain, Vantage: l.vantage, Start: l.time})
			i = len(out) - 1
		}
		if l.time.Before(out[i].Start) {
			out[i].Start = l.time
		}
		out[i].Observations = append(out[i].Observations, l.observations(domain)...)
	}
	return out
}

// zdnsLookups reads one module's result; qtype 0 (zdns 1) means the type
// of the answer records.
func zdnsLookups(domain string, qtype uint16, res zdnsResult) ([]lookup, error) {
	if res.Timestamp.IsZero() {
		return nil, errors.New(`no "timestamp"`)
	}
	base := lookup{qname: domain, qtype: qtype, time: res.Timestamp.Time,
		rtt: time.Duration(res.Duration * float64(time.Second)), vantage: ZDNS}
	if err := zdnsStatus(res.Status, &base); err != nil {
		return nil, err
	}
	data := bytes.TrimSpace(res.Data)
	switch {
	case len(data) == 0 || string(data) == "null":
		// A failed lookup carries no data.
		if base.qtype == 0 {
			base.qtype = dns.TypeA
		}
		return []lookup{base}, nil
	case data[0] == '[':
		var rs []zdnsResponse
		if err := json.Unmarshal(data, &rs); err != nil {
			return nil, errors.New(jsonReason(err))
		}
		out := make([]lookup, 0, len(rs))
		for _, r := range rs {
			l := base
			if err := r.fill(&l); err != nil {
				return nil, err
			}
			out = append(out, l)
		}
		return out, nil
	case bytes.Contains(data, []byte(`"per_layer_responses"`)):
		var layered zdnsLayered
		if err := json.Unmarshal(data, &layered); err != nil {
			return nil, errors.New(jsonReason(err))
		}
		return layered.lookups(domain, base)
	default:
		var r zdnsResponse
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, errors.New(jsonReason(err))
		}
		l := base
		if err := r.fill(&l); err != nil {
			return nil, err
		}
		return []lookup{l}, nil
	}
}

// lookups keeps the responses of the zone closest to domain: its own name
// servers' answers for the module's type, and their NS answers for the
// domain when the zone is the domain itself.
func (z zdnsLayered) lookups(domain string, base lookup) ([]lookup, error) {
	zone, labels := "", -1
	for layer := range z.Layers {
		l := canonName(layer)
		if (l == domain || strings.HasSuffix(domain, "."+l) || l == "") && dns.CountLabel(l+".") > labels {
			zone, labels = layer, dns.CountLabel(l+".")
		}
	}
	if labels < 0 {
		return nil, errors.New("no per-layer response for a zone of the name")
	}
	var out []lookup
	for _, e := range z.Layers[zone] {
		qtype, ok := qtypeOf(e.Type)
		if !ok || !(qtype == base.qtype || (qtype == dns.TypeNS && canonName(zone) == domain)) {
			continue
		}
		l := base
		l.qtype = qtype
		if err := zdnsStatus(e.Status, &l); err != nil {
			return nil, err
		}
		if err := e.Result.fill(&l); err != nil {
			return nil, err
		}
		if e.Result.Resolver == "" && e.Nameserver != "" {
			l.vantage = canonName(e.Nameserver)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s response in zone %q", typeName(base.qtype), zone)
	}
	return out, nil
}

// zdnsStatus maps a zdns status to the lookup's rcode and error class:
// an rcode's name as the crawler classes it, or one of zdns's own.
func zdnsStatus(status string, l *lookup) error {
	if rc, ok := dns.StringToRcode[status]; ok {
		l.rcode, l.err = rc, crawler.RcodeClass(rc)
		return nil
	}
	switch status {
	case "NO_ANSWER", "NONEEDEDGLUE":
		l.rcode, l.err = dns.RcodeSuccess, obs.OK
	case "TIMEOUT", "ITERATIVE_TIMEOUT":
		l.rcode, l.err = 0, obs.Timeout
	case "TRUNCATED":
		l.rcode, l.err = 0, obs.Truncated
	case "ERROR":
		l.rcode, l.err = 0, obs.Network
	case "AUTHFAIL":
		l.rcode, l.err = 0, obs.Malformed
	case "":
		return errors.New(`no "status"`)
	default:
		return fmt.Errorf("status %q: no lookup was answered", status)
	}
	return nil
}

// fill copies a response into a lookup.
func (r zdnsResponse) fill(l *lookup) error {
	if r.Resolver != "" {
		l.vantage = vantageName(r.Resolver)
	}
	if f := r.Flags; f != nil {
		if f.Authoritative {
			l.flags |= obs.FlagAA
		}
		if f.Truncated {
			l.flags |= obs.FlagTC
		}
		if f.RecursionAvailable {
			l.flags |= obs.FlagRA
		}
		if fromRcode(l.err) {
			// Each name server's own response code (--all-nameservers).
			l.rcode, l.err = f.ErrorCode, crawler.RcodeClass(f.ErrorCode)
		}
	}
	var err error
	if l.answer, err = zdnsRRs(r.Answers); err != nil {
		return err
	}
	if l.qtype == 0 {
		l.qtype = dns.TypeA
		for _, rr := range l.answer {
			if t := rr.Header().Rrtype; t != dns.TypeCNAME {
				l.qtype = t
			}
		}
	}
	if l.authority, err = zdnsRRs(r.Authorities); err != nil {
		return err
	}
	l.additional, err = zdnsRRs(r.Additionals)
	return err
}

func zdnsRRs(rs []zdnsRecord) ([]dns.RR, error) {
	var out []dns.RR
	for _, r := range rs {
		raw := r.Answer
		if raw == nil {
			raw = r.Data
		}
		var data string
		if json.Unmarshal(raw, &data) != nil {
			continue // a structured answer (SOA, MX, EDNS0): not a type kept
		}
		rr, err := rrOf(r.Name, r.Type, r.TTL, data)
		if err != nil {
			return nil, err
		}
		if rr != nil {
			out = append(out, rr)
		}
	}
	return out, nil
}

// fromRcode reports whether an error class stands for a response code, as
// opposed to no response at all.
func fromRcode(c obs.ErrClass) bool {
	switch c {
	case obs.OK, obs.Refused, obs.ServFail, obs.NXDomain, obs.OtherRcode:
		return true
	}
	return false
}
