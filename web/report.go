package web

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/storage"
)

// ReportOptions shape WriteReport. The zero value works.
type ReportOptions struct {
	// Domains are charted whatever their verdict, before the listed ones.
	Domains []string
	// MaxDomains caps the domains charted (default DefaultReportDomains).
	MaxDomains int
	// Span is how much history each chart covers, back from the last
	// measurement the domain's verdict covers (default DefaultSpan; a
	// negative span charts everything stored).
	Span time.Duration
	// Now stamps the report; nil: time.Now.
	Now func() time.Time
}

// DefaultReportDomains is how many domains a report charts by default.
const DefaultReportDomains = 50

// maxReportVantages bounds the vantages a report's summary names.
const maxReportVantages = 1024

// verdictCount is one line of a report's verdict table.
type verdictCount struct {
	Verdict string
	N       int
}

// reportData is what report.html shows.
type reportData struct {
	Generated    time.Time
	DB           string
	Stats        storage.Stats
	Vantages     []string
	MoreVantages int
	From, To     time.Time
	Counts       []verdictCount
	Total        int
	Listed       int
	Domains      []domainPage
	Omitted      int
	// NetworkRows are every flux network; Networks the largest ones
	// (two domains or more) drawn, up to maxReportNetworks.
	NetworkRows []networkRow
	Networks    []networkPage
	CSS         template.CSS
}

// maxReportNetworks is how many flux networks a report draws.
const maxReportNetworks = 10

// ErrUnknownDomain is returned by WriteReport for a requested domain the
// database knows nothing of.
var ErrUnknownDomain = errors.New("unknown domain")

// WriteReport writes a self-contained HTML report of the crawl in store:
// what was measured (domains, probes, vantages, time span), the verdict
// counts, the charts of the domains asked for and of the listed domains,
// up to opts.MaxDomains, and the flux networks (a table of all, a picture
// of each of the largest). The file holds its style and charts
// inline and refers to nothing outside itself. The verdicts are read in
// one streaming pass; only the charted domains' histories are read.
func WriteReport(w io.Writer, store *storage.Store, meta *ipmeta.DB, opts ReportOptions) error {
	if opts.MaxDomains <= 0 {
		opts.MaxDomains = DefaultReportDomains
	}
	span := opts.Span
	switch {
	case span == 0:
		span = DefaultSpan
	case span < 0:
		span = 0
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	d := reportData{Generated: now().UTC(), DB: store.Path(), CSS: template.CSS(mustAsset("static/style.css"))}
	var err error
	if d.Stats, err = store.Stats(); err != nil {
		return fmt.Errorf("report: counting the database: %w", err)
	}
	var charted []string
	want := map[string]bool{}
	for _, name := range opts.Domains {
		if !want[name] && len(charted) < opts.MaxDomains {
			charted = append(charted, name)
			want[name] = true
		}
	}
	counts := map[string]int{}
	vantages := map[string]bool{}
	err = classify.Each(store, false, func(v classify.Verdict) error {
		counts[v.Verdict]++
		d.Total++
		f := v.Features
		if !f.FirstSeen.IsZero() && (d.From.IsZero() || f.FirstSeen.Before(d.From)) {
			d.From = f.FirstSeen
		}
		if f.LastSeen.After(d.To) {
			d.To = f.LastSeen
		}
		for _, pv := range f.PerVantage {
			if len(vantages) < maxReportVantages {
				vantages[pv.Vantage] = true
			} else if !vantages[pv.Vantage] {
				d.MoreVantages = 1 // at least one more
			}
		}
		if !v.Listed() {
			return nil
		}
		d.Listed++
		switch {
		case want[v.Domain]:
		case len(charted) < opts.MaxDomains:
			charted = append(charted, v.Domain)
			want[v.Domain] = true
		default:
			d.Omitted++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("report: reading verdicts: %w", err)
	}
	d.Vantages = slices.Sorted(maps.Keys(vantages))
	for _, k := range classify.Verdicts {
		d.Counts = append(d.Counts, verdictCount{k, counts[k]})
		delete(counts, k)
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		d.Counts = append(d.Counts, verdictCount{k, counts[k]})
	}
	for i, name := range charted {
		p, ok, err := loadDomain(store, meta, name, span, fmt.Sprintf("-%d", i+1))
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if !ok {
			return fmt.Errorf("report: %w %s", ErrUnknownDomain, name)
		}
		p.Report, p.Anchor = true, fmt.Sprintf("d-%d", i+1)
		d.Domains = append(d.Domains, p)
	}
	nets, err := networks.List(store)
	if err != nil {
		return fmt.Errorf("report: reading flux networks: %w", err)
	}
	for i, n := range nets {
		d.NetworkRows = append(d.NetworkRows, rowOfNetwork(n))
		if len(n.Domains) < 2 || len(d.Networks) == maxReportNetworks {
			continue
		}
		p, err := loadNetwork(store, meta, n, fmt.Sprintf("-n%d", i+1))
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		p.Report, p.Anchor = true, "n-"+n.ID
		d.Networks = append(d.Networks, p)
	}
	if err := pages()["report.html"].ExecuteTemplate(w, "report", d); err != nil {
		return fmt.Errorf("report: rendering: %w", err)
	}
	return nil
}
