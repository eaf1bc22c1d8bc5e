package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// The cof format is passive DNS in the Common Output Format
// (draft-dulaunoy-dnsop-passive-dns-cof), one record set a line:
//
//	{"rrname":"flux.example","rrtype":"A","rdata":["192.0.2.1","198.51.100.7"],
//	 "time_first":1795770001,"time_last":1795773601,"count":12,"sensor_id":"s1"}
//
// rdata is one string or a list. A sensor saw the records between
// time_first and time_last (Unix seconds; zone_time_first and
// zone_time_last when only a zone file was seen), so each line becomes an
// observation at each of those two times (one when they are equal), each
// its own probe. The observations are flagged obs.FlagPassive, carry no
// RTT, and TTL 0 (passive DNS keeps none). The vantage is
// "pdns:"+sensor_id, else "pdns:"+Options.Source, else "pdns:cof". Lines of
// types other than A, AAAA, NS and CNAME are skipped.

type cofLine struct {
	RRName        string          `json:"rrname"`
	RRType        json.RawMessage `json:"rrtype"`
	RData         json.RawMessage `json:"rdata"`
	TimeFirst     flexTime        `json:"time_first"`
	TimeLast      flexTime        `json:"time_last"`
	ZoneTimeFirst flexTime        `json:"zone_time_first"`
	ZoneTimeLast  flexTime        `json:"zone_time_last"`
	SensorID      json.RawMessage `json:"sensor_id"`
}

func parseCOF(b []byte, opts Options) ([]obs.Probe, error) {
	var c cofLine
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if c.RRName == "" {
		return nil, errors.New(`no "rrname"`)
	}
	qtype, err := cofType(c.RRType)
	if err != nil {
		return nil, err
	}
	switch qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeCNAME:
	default:
		return nil, nil
	}
	domain, err := domainName(c.RRName)
	if err != nil {
		return nil, err
	}
	first, last := c.TimeFirst.Time, c.TimeLast.Time
	if first.IsZero() && last.IsZero() {
		first, last = c.ZoneTimeFirst.Time, c.ZoneTimeLast.Time
	}
	switch {
	case first.IsZero() && last.IsZero():
		return nil, errors.New(`no "time_first" or "time_last"`)
	case first.IsZero():
		first = last
	case last.IsZero():
		last = first
	case last.Before(first):
		return nil, fmt.Errorf("time_last %s is before time_first %s", last.Format("2006-01-02T15:04:05Z07:00"), first.Format("2006-01-02T15:04:05Z07:00"))
	}
	datas, err := cofRData(c.RData)
	if err != nil {
		return nil, err
	}
	var answer []obs.Record
	for _, d := range datas {
		r := obs.Record{Name: domain, Type: qtype}
		switch qtype {
		case dns.TypeA, dns.TypeAAAA:
			a, err := netip.ParseAddr(d)
			if err != nil || a.Is4() != (qtype == dns.TypeA) || a.Zone() != "" {
				return nil, fmt.Errorf("rdata %q is not an %s address", d, typeName(qtype))
			}
			r.Data = a.String()
		default:
			if _, ok := dns.IsDomainName(d); !ok || canonName(d) == "" {
				return nil, fmt.Errorf("rdata %q is not a name", d)
			}
			r.Data = canonName(d)
		}
		answer = append(answer, r)
	}
	obs.Sort(answer)

	vantage := opts.Vantage
	if vantage == "" {
		vantage = "pdns:" + cofSensor(c.SensorID, opts.Source)
	}
	times := []time.Time{first}
	if !last.Equal(first) {
		times = append(times, last)
	}
	out := make([]obs.Probe, 0, len(times))
	for _, t := range times {
		o := obs.Observation{Time: t, Vantage: vantage, Name: domain, QType: qtype,
			Rcode: dns.RcodeSuccess, Flags: obs.FlagPassive, Answer: slices.Clone(answer)}
		out = append(out, obs.Probe{Domain: domain, Vantage: vantage, Start: t, Observations: []obs.Observation{o}})
	}
	return out, nil
}

func cofType(raw json.RawMessage) (uint16, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if t, ok := qtypeOf(s); ok {
			return t, nil
		}
		return 0, fmt.Errorf("unknown rrtype %q", s)
	}
	var n uint16
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	if len(raw) == 0 {
		return 0, errors.New(`no "rrtype"`)
	}
	return 0, fmt.Errorf("bad rrtype %s", raw)
}

func cofRData(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil && len(list) > 0 {
		return list, nil
	}
	if len(raw) == 0 {
		return nil, errors.New(`no "rdata"`)
	}
	return nil, fmt.Errorf("bad rdata %s: want a string or a list of strings", abbreviate(string(raw)))
}

// cofSensor names the sensor: sensor_id (a string or a number), else source.
func cofSensor(raw json.RawMessage, source string) string {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil && n != "" {
		return n.String()
	}
	if source != "" {
		return source
	}
	return COF
}
