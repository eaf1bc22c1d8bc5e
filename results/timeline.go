package results

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// TimelineOptions shape WriteTimeline.
type TimelineOptions struct {
	From    time.Time // only probes from then on
	Verdict *classify.Verdict
	Meta    *ipmeta.DB // ASN and country counts; nil: none
	Color   bool       // highlight new addresses with ANSI colour (else a + marks them)
}

// WriteTimeline prints a domain's history as a table: one row per round
// (the k-th probe through each vantage), one column per vantage holding
// how many addresses it answered and how many of them were never seen
// before, then the running totals of addresses, ASNs and countries. Under
// each row it lists the new addresses.
func WriteTimeline(w io.Writer, store *storage.Store, domain string, opts TimelineOptions) error {
	d, ok, err := store.Domain(domain)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s is not a seeded domain", domain)
	}
	fmt.Fprintf(w, "%s  first seen %s  sources %s\n", d.Name, d.FirstSeen.Format(time.RFC3339), strings.Join(d.Sources, ","))
	if d.IsDark() && d.Active {
		fmt.Fprintf(w, "dark: no vantage answered its last %d measurements; measured less often until one does (next %s)\n",
			d.Dark, d.NextDue.Format(time.RFC3339))
	}
	if v := opts.Verdict; v != nil {
		fmt.Fprintf(w, "verdict: %s (score %.2f, confidence %.2f) %s\n", v.Verdict, v.Score, v.Confidence, v.Evidence)
		if l := v.Listing; l != nil {
			fmt.Fprintf(w, "listed since %s, last confirmed %s, expires %s\n",
				l.FirstListed.Format(time.RFC3339), l.LastConfirmed.Format(time.RFC3339), l.ExpiresAt.Format(time.RFC3339))
		}
	}
	// Each vantage's probes in time order; row k holds the k-th of each.
	var vantages []string
	byVantage := map[string][]obs.Probe{}
	err = store.History(domain, opts.From, time.Time{}, func(p obs.Probe) error {
		if _, ok := byVantage[p.Vantage]; !ok {
			vantages = append(vantages, p.Vantage)
		}
		byVantage[p.Vantage] = append(byVantage[p.Vantage], p)
		return nil
	})
	if err != nil {
		return err
	}
	if len(vantages) == 0 {
		_, err := fmt.Fprintln(w, "no measurements yet")
		return err
	}
	slices.Sort(vantages)
	rows := 0
	for _, ps := range byVantage {
		rows = max(rows, len(ps))
	}
	fmt.Fprintln(w)
	for i, v := range vantages {
		fmt.Fprintf(w, "V%d = %s\n", i+1, v)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	header := []string{"ROUND", "TIME"}
	for i := range vantages {
		header = append(header, fmt.Sprintf("V%d", i+1))
	}
	header = append(header, "NEW", "ADDRS", "ASNS", "CC")
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	seen := map[netip.Addr]bool{}
	asns, countries := map[uint32]bool{}, map[string]bool{}
	var notes []string // the new addresses under each row, printed after the table
	for k := range rows {
		cells := []string{fmt.Sprint(k + 1), ""}
		var fresh []netip.Addr
		for _, v := range vantages {
			ps := byVantage[v]
			if k >= len(ps) {
				cells = append(cells, "")
				continue
			}
			p := ps[k]
			if cells[1] == "" {
				cells[1] = p.Start.UTC().Format("2006-01-02 15:04:05Z")
			}
			addrs, failure := ownAddresses(p)
			if failure != "" {
				cells = append(cells, failure)
				continue
			}
			n := 0
			for _, a := range addrs {
				if !seen[a] {
					seen[a] = true
					fresh = append(fresh, a)
					n++
					if info, ok := opts.Meta.Lookup(a); ok {
						if info.ASN != 0 {
							asns[info.ASN] = true
						}
						if info.Country != "" {
							countries[info.Country] = true
						}
					}
				}
			}
			cells = append(cells, fmt.Sprintf("%d (+%d)", len(addrs), n))
		}
		cells = append(cells, fmt.Sprint(len(fresh)), fmt.Sprint(len(seen)), fmt.Sprint(len(asns)), fmt.Sprint(len(countries)))
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
		if len(fresh) > 0 {
			slices.SortFunc(fresh, netip.Addr.Compare)
			var b strings.Builder
			fmt.Fprintf(&b, "round %d new:", k+1)
			for _, a := range fresh {
				if opts.Color {
					fmt.Fprintf(&b, " \x1b[1;32m%s\x1b[0m", a)
				} else {
					fmt.Fprintf(&b, " +%s", a)
				}
			}
			notes = append(notes, b.String())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

// ownAddresses returns the addresses a probe's A and AAAA answers for its
// domain held (through its CNAME chain), or the error class if both failed.
func ownAddresses(p obs.Probe) ([]netip.Addr, string) {
	var out []netip.Addr
	failure := ""
	answered := false
	for _, o := range p.Observations {
		if o.Name != p.Domain || (o.QType != dns.TypeA && o.QType != dns.TypeAAAA) || o.Flags&obs.FlagDelegation != 0 {
			continue
		}
		if o.Err != obs.OK {
			failure = o.Err.String()
			continue
		}
		answered = true
		for _, r := range o.Answer {
			if r.Type != dns.TypeA && r.Type != dns.TypeAAAA {
				continue
			}
			if a, err := netip.ParseAddr(r.Data); err == nil {
				out = append(out, a)
			}
		}
	}
	if !answered && failure != "" {
		return nil, failure
	}
	return out, ""
}
