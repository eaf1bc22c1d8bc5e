package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// The jsonl format is fluxwatch's own, and its one JSON form of
// observations: one probe a line, as `fluxwatch export-observations` writes
// it, `show --json` prints it and `import --format jsonl` reads it, so that
// databases can be moved and merged. Its keys are a contract, documented in
// the README:
//
//	{"domain":"flux.example","vantage":"192.0.2.53:53","start":"2026-11-27T09:00:01.000123Z",
//	 "observations":[{"time":"2026-11-27T09:00:01.000456Z","name":"flux.example","qtype":"A",
//	   "rcode":"NOERROR","flags":["ra"],"rtt_us":1234,
//	   "answer":[{"name":"flux.example","type":"A","ttl":180,"data":"192.0.2.1"}]}]}
//
// Times are RFC 3339 in UTC with nanoseconds; rtt_us is whole
// microseconds (what storage keeps); "err" is the error class ("timeout",
// "nxdomain", …; see obs.ErrClass) and is left out when the lookup was
// answered with NOERROR; "flags" and "answer" are left out when empty.
// Types and response codes are mnemonics, or TYPEn and RCODEn for those
// without one. Decode rejects unknown keys: a newer export that says more
// than this reader understands fails loudly instead of losing data.

type jsonlRecord struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data"`
}

type jsonlObservation struct {
	Time   time.Time     `json:"time"`
	Name   string        `json:"name"`
	QType  string        `json:"qtype"`
	Rcode  string        `json:"rcode"`
	Flags  []string      `json:"flags,omitempty"`
	RTTus  int64         `json:"rtt_us"`
	Err    string        `json:"err,omitempty"`
	Answer []jsonlRecord `json:"answer,omitempty"`
}

type jsonlProbe struct {
	Domain       string             `json:"domain"`
	Vantage      string             `json:"vantage"`
	Start        time.Time          `json:"start"`
	Observations []jsonlObservation `json:"observations"`
}

// Encode writes a probe as one line of the jsonl format.
func Encode(w io.Writer, p obs.Probe) error {
	jp := jsonlProbe{Domain: p.Domain, Vantage: p.Vantage, Start: p.Start.UTC(),
		Observations: make([]jsonlObservation, len(p.Observations))}
	for i, o := range p.Observations {
		jo := jsonlObservation{Time: o.Time.UTC(), Name: o.Name, QType: typeName(o.QType), Rcode: rcodeName(o.Rcode),
			Flags: flagNames(o.Flags), RTTus: o.RTT.Microseconds()}
		if o.Err != obs.OK {
			jo.Err = o.Err.String()
		}
		if len(o.Answer) > 0 {
			jo.Answer = make([]jsonlRecord, len(o.Answer))
			for j, r := range o.Answer {
				jo.Answer[j] = jsonlRecord{Name: r.Name, Type: typeName(r.Type), TTL: r.TTL, Data: r.Data}
			}
		}
		jp.Observations[i] = jo
	}
	b, err := json.Marshal(jp)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Decode reads one line of the jsonl format. Names come back canonical
// (lower case, no trailing dot), addresses in their canonical text and
// answers sorted (obs.Sort).
func Decode(line []byte) (obs.Probe, error) {
	var jp jsonlProbe
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jp); err != nil {
		return obs.Probe{}, err
	}
	if dec.More() {
		return obs.Probe{}, errors.New("more than one JSON value on the line")
	}
	domain, err := domainName(jp.Domain)
	if err != nil {
		return obs.Probe{}, err
	}
	switch {
	case jp.Vantage == "":
		return obs.Probe{}, errors.New(`no "vantage"`)
	case jp.Start.IsZero():
		return obs.Probe{}, errors.New(`no "start"`)
	case len(jp.Observations) == 0:
		return obs.Probe{}, errors.New(`no "observations"`)
	}
	p := obs.Probe{Domain: domain, Vantage: jp.Vantage, Start: jp.Start.UTC(), Observations: make([]obs.Observation, len(jp.Observations))}
	for i, jo := range jp.Observations {
		o, err := decodeObservation(jo, p.Vantage)
		if err != nil {
			return obs.Probe{}, fmt.Errorf("observation %d: %v", i+1, err)
		}
		p.Observations[i] = o
	}
	return p, nil
}

func decodeObservation(jo jsonlObservation, vantage string) (obs.Observation, error) {
	o := obs.Observation{Time: jo.Time.UTC(), Vantage: vantage, Name: canonName(jo.Name)}
	var ok bool
	switch {
	case jo.Time.IsZero():
		return o, errors.New(`no "time"`)
	case o.Name == "":
		return o, errors.New(`no "name"`)
	case jo.RTTus < 0 || jo.RTTus > math.MaxInt64/int64(time.Microsecond):
		return o, fmt.Errorf("rtt_us %d out of range", jo.RTTus)
	}
	if o.QType, ok = qtypeOf(jo.QType); !ok {
		return o, fmt.Errorf("unknown qtype %q", jo.QType)
	}
	if o.Rcode, ok = rcodeOf(jo.Rcode); !ok {
		return o, fmt.Errorf("unknown rcode %q", jo.Rcode)
	}
	if o.Err, ok = errClassOf(jo.Err); !ok {
		return o, fmt.Errorf("unknown err %q", jo.Err)
	}
	for _, f := range jo.Flags {
		bit, ok := flagOf(f)
		if !ok {
			return o, fmt.Errorf("unknown flag %q", f)
		}
		o.Flags |= bit
	}
	o.RTT = time.Duration(jo.RTTus) * time.Microsecond
	for _, jr := range jo.Answer {
		r := obs.Record{Name: canonName(jr.Name), TTL: jr.TTL, Data: jr.Data}
		if r.Type, ok = qtypeOf(jr.Type); !ok {
			return o, fmt.Errorf("record %s: unknown type %q", jr.Name, jr.Type)
		}
		switch r.Type {
		case dns.TypeA, dns.TypeAAAA:
			a, err := netip.ParseAddr(jr.Data)
			if err != nil || a.Is4() != (r.Type == dns.TypeA) || a.Zone() != "" {
				return o, fmt.Errorf("record %s: %q is not an %s address", jr.Name, jr.Data, jr.Type)
			}
			r.Data = a.String()
		case dns.TypeNS, dns.TypeCNAME, dns.TypeDNAME, dns.TypePTR:
			r.Data = canonName(jr.Data)
		}
		if r.Name == "" || r.Data == "" {
			return o, fmt.Errorf("record %q %s %q: empty name or data", jr.Name, jr.Type, jr.Data)
		}
		o.Answer = append(o.Answer, r)
	}
	obs.Sort(o.Answer)
	return o, nil
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

func rcodeOf(s string) (int, bool) {
	if rc, ok := dns.StringToRcode[strings.ToUpper(s)]; ok {
		return rc, true
	}
	if n, ok := strings.CutPrefix(strings.ToUpper(s), "RCODE"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 0 && v <= 0xfff && strconv.Itoa(v) == n {
			return v, true
		}
	}
	return 0, false
}

func errClassOf(s string) (obs.ErrClass, bool) {
	if s == "" {
		return obs.OK, true
	}
	for _, c := range obs.ErrClasses() {
		if c.String() == s {
			return c, true
		}
	}
	return 0, false
}

// flagNames lists the set flags by their names (Flags.String); a bit
// without a name is written "bitN".
func flagNames(f obs.Flags) []string {
	var out []string
	for i := range 8 {
		bit := obs.Flags(1) << i
		if f&bit == 0 {
			continue
		}
		name := bit.String()
		if name == "" {
			name = "bit" + strconv.Itoa(i)
		}
		out = append(out, name)
	}
	return out
}

func flagOf(name string) (obs.Flags, bool) {
	for i := range 8 {
		bit := obs.Flags(1) << i
		if bit.String() == name || "bit"+strconv.Itoa(i) == name {
			return bit, true
		}
	}
	return 0, false
}
