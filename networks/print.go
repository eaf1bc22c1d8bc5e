package networks

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// PrintTable writes nets as the table `fluxwatch networks` prints: one
// row a network, with its counts, its time span, its latest change and a
// few of its domains.
func PrintTable(w io.Writer, nets []Network) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tDOMAINS\tAGENTS\tNS AGENTS\tASNS\tCOUNTRIES\tFIRST SEEN\tLAST SEEN\tLATEST CHANGE\tDOMAINS (FIRST)")
	for _, n := range nets {
		latest := "-"
		if k := len(n.Events); k > 0 {
			e := n.Events[k-1]
			latest = e.Kind + " " + when(e.At)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", n.ID, len(n.Domains), len(n.Agents), len(n.NSAgents),
			len(n.ASNs), len(n.Countries), when(n.FirstSeen), when(n.LastSeen), latest, sample(n.Domains))
	}
	return tw.Flush()
}

// PrintJSONLines writes nets as `fluxwatch networks --json` prints them:
// one JSON object a line (the Network's JSON form).
func PrintJSONLines(w io.Writer, nets []Network) error {
	enc := json.NewEncoder(w)
	for _, n := range nets {
		if err := enc.Encode(n); err != nil {
			return err
		}
	}
	return nil
}

// maxDetailAgents is how many agents PrintDetail lists of each kind.
const maxDetailAgents = 64

// PrintDetail writes one network as `fluxwatch networks show ID` prints
// it: its span, its domains, its agents (the first maxDetailAgents of
// each kind), their ASNs and countries, its sizes over time and its event
// log.
func PrintDetail(w io.Writer, n Network) error {
	fmt.Fprintf(w, "network %s: %d domains, %d agents, %d name server agents\n", n.ID, len(n.Domains), len(n.Agents), len(n.NSAgents))
	fmt.Fprintf(w, "first seen %s, last seen %s\n", when(n.FirstSeen), when(n.LastSeen))
	fmt.Fprintf(w, "\ndomains:\n")
	for _, d := range n.Domains {
		fmt.Fprintf(w, "  %s\n", d)
	}
	for _, list := range []struct {
		title string
		addrs []netip.Addr
	}{{"agents", n.Agents}, {"name server agents", n.NSAgents}} {
		if len(list.addrs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d):\n", list.title, len(list.addrs))
		shown := list.addrs[:min(len(list.addrs), maxDetailAgents)]
		for i := 0; i < len(shown); i += 4 {
			var row []string
			for _, a := range shown[i:min(i+4, len(shown))] {
				row = append(row, fmt.Sprintf("%-40s", a))
			}
			fmt.Fprintf(w, "  %s\n", strings.TrimRight(strings.Join(row, ""), " "))
		}
		if more := len(list.addrs) - len(shown); more > 0 {
			fmt.Fprintf(w, "  (%d more: --json lists them all)\n", more)
		}
	}
	if len(n.ASNs) > 0 {
		asns := make([]string, len(n.ASNs))
		for i, a := range n.ASNs {
			asns[i] = "AS" + strconv.FormatUint(uint64(a), 10)
		}
		fmt.Fprintf(w, "\nASNs (%d): %s\n", len(asns), strings.Join(asns, " "))
	}
	if len(n.Countries) > 0 {
		fmt.Fprintf(w, "countries (%d): %s\n", len(n.Countries), strings.Join(n.Countries, " "))
	}
	if len(n.Sizes) > 0 {
		fmt.Fprintf(w, "\nsize over time:\n")
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  AT\tDOMAINS\tAGENTS")
		for _, s := range n.Sizes {
			fmt.Fprintf(tw, "  %s\t%d\t%d\n", when(s.At), s.Domains, s.Agents)
		}
		tw.Flush()
	}
	if len(n.Events) > 0 {
		fmt.Fprintf(w, "\nevents:\n")
		for _, e := range n.Events {
			fmt.Fprintf(w, "  %s  %-10s  %s\n", when(e.At), e.Kind, e.Detail)
		}
	}
	return nil
}

// Line is the line `fluxwatch show DOMAIN` prints about the domain's
// network: "network net-3: 4 domains, 212 agents; with a.example,
// b.example, c.example", or "" when it is in none.
func Line(n *Network, domain string) string {
	if n == nil {
		return ""
	}
	others := n.Siblings(domain)
	s := fmt.Sprintf("network %s: %d domains, %d agents", n.ID, len(n.Domains), len(n.Agents)+len(n.NSAgents))
	if len(others) > 0 {
		s += "; with " + sample(others)
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
