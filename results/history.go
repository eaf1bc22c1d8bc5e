package results

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// WriteHistory prints a domain's measured history since from: for every
// probe (one round through one vantage) the answer sets with their TTLs, or
// JSON Lines of the probes when asJSON is set.
func WriteHistory(w io.Writer, store *storage.Store, domain string, from time.Time, verdict *classify.Verdict, asJSON bool) error {
	d, ok, err := store.Domain(domain)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s is not a seeded domain", domain)
	}
	if !asJSON {
		fmt.Fprintf(w, "%s  first seen %s  sources %s\n", d.Name, d.FirstSeen.Format(time.RFC3339), strings.Join(d.Sources, ","))
		if verdict != nil {
			fmt.Fprintf(w, "verdict: %s (score %.2f) %s\n", verdict.Verdict, verdict.Score, verdict.Evidence)
		}
	}
	enc := json.NewEncoder(w)
	n := 0
	err = store.History(domain, from, time.Time{}, func(p obs.Probe) error {
		n++
		if asJSON {
			return enc.Encode(toJSONProbe(p))
		}
		fmt.Fprintf(w, "\n%s  via %s\n", p.Start.Format("2006-01-02T15:04:05.000Z07:00"), p.Vantage)
		for _, o := range p.Observations {
			name := ""
			if o.Name != p.Domain {
				name = o.Name + " "
			}
			qt := dns.TypeToString[o.QType]
			if o.Err != obs.OK {
				fmt.Fprintf(w, "  %s%-5s %s\n", name, qt, o.Err)
				continue
			}
			if len(o.Answer) == 0 {
				fmt.Fprintf(w, "  %s%-5s (no records)\n", name, qt)
				continue
			}
			fmt.Fprintf(w, "  %s%-5s %s\n", name, qt, formatAnswer(o.Answer))
		}
		return nil
	})
	if err == nil && n == 0 && !asJSON {
		fmt.Fprintln(w, "no measurements yet")
	}
	return err
}

// formatAnswer groups records by RRset: "cname→edge.cdn.test; 192.0.2.1 192.0.2.7 ttl 20s".
func formatAnswer(rs []obs.Record) string {
	var parts []string
	for i := 0; i < len(rs); {
		j := i
		var data []string
		for j < len(rs) && rs[j].Name == rs[i].Name && rs[j].Type == rs[i].Type {
			data = append(data, rs[j].Data)
			j++
		}
		prefix := ""
		if rs[i].Type == dns.TypeCNAME {
			prefix = rs[i].Name + " CNAME "
		}
		parts = append(parts, fmt.Sprintf("%s%s ttl %ds", prefix, strings.Join(data, " "), rs[i].TTL))
		i = j
	}
	return strings.Join(parts, "; ")
}

type recordJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data"`
}

type observationJSON struct {
	Time   time.Time    `json:"time"`
	Name   string       `json:"name"`
	QType  string       `json:"qtype"`
	Rcode  string       `json:"rcode"`
	Flags  string       `json:"flags,omitempty"`
	Error  string       `json:"error,omitempty"`
	RTTMs  float64      `json:"rtt_ms"`
	Answer []recordJSON `json:"answer,omitempty"`
}

type jsonProbe struct {
	Domain       string            `json:"domain"`
	Vantage      string            `json:"vantage"`
	Start        time.Time         `json:"start"`
	Observations []observationJSON `json:"observations"`
}

func toJSONProbe(p obs.Probe) jsonProbe {
	out := jsonProbe{Domain: p.Domain, Vantage: p.Vantage, Start: p.Start}
	for _, o := range p.Observations {
		oj := observationJSON{Time: o.Time, Name: o.Name, QType: dns.TypeToString[o.QType], Rcode: dns.RcodeToString[o.Rcode],
			Flags: o.Flags.String(), RTTMs: float64(o.RTT.Microseconds()) / 1000}
		if o.Err != obs.OK {
			oj.Error = o.Err.String()
		}
		for _, r := range o.Answer {
			oj.Answer = append(oj.Answer, recordJSON{r.Name, dns.TypeToString[r.Type], r.TTL, r.Data})
		}
		out.Observations = append(out.Observations, oj)
	}
	return out
}
