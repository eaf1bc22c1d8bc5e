package results

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// WriteHistory prints a domain's measured history since from: for every
// probe (one round through one vantage) the answer sets with their TTLs, or
// when asJSON is set the probes in fluxwatch's one JSON form of
// observations (importer.Encode), which `export-observations` writes and
// `import --format jsonl` reads back.
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
	n := 0
	err = store.History(domain, from, time.Time{}, func(p obs.Probe) error {
		n++
		if asJSON {
			return importer.Encode(w, p)
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
