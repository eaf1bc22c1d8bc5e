package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/storage"
)

// spanChoice is a history range a domain page offers.
type spanChoice struct {
	Name string
	D    time.Duration // 0: everything stored
}

// spans are the history ranges a domain page offers.
var spans = []spanChoice{{"1d", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}, {"all", 0}}

// maxLogEvents is how many listing events a domain page shows (the newest).
const maxLogEvents = 200

// maxAgentsShown is how many addresses or name servers a page lists.
const maxAgentsShown = 64

// domainPage is the data of a domain page and of a domain's section in a
// report.
type domainPage struct {
	Name     string
	Seeded   bool
	Record   storage.Domain
	Verdict  *classify.Verdict
	Listed   bool
	Delisted bool
	Log      []classify.ListingEvent
	Timeline *Timeline
	Charts   Charts
	Span     string
	Spans    []string
	JSONLink string
	// Report is set in a report: no links into the web view. Anchor is
	// the section's id there.
	Report bool
	Anchor string
	// The verdict's agents and name servers, cut to maxAgentsShown.
	Agents, NSAgents, NameServers             []string
	MoreAgents, MoreNSAgents, MoreNameServers int
	// Network is the flux network the domain is in (nil: none), Siblings
	// its other domains, cut to maxAgentsShown.
	Network      *networks.Network
	Siblings     []string
	MoreSiblings int
}

// loadDomain gathers what a page shows of name; ok is false when the
// database knows nothing of it. span is how much history to chart, back
// from the last measurement the verdict covers (0: all of it); suffix is
// appended to the charts' element ids.
func loadDomain(store *storage.Store, meta *ipmeta.DB, name string, span time.Duration, suffix string) (p domainPage, ok bool, err error) {
	p.Name = name
	if p.Record, p.Seeded, err = store.Domain(name); err != nil {
		return p, false, err
	}
	if p.Verdict, err = classify.Load(store, name); err != nil {
		return p, false, err
	}
	if !p.Seeded && p.Verdict == nil {
		return p, false, nil
	}
	var from time.Time
	if p.Verdict != nil {
		p.Listed = p.Verdict.Listed()
		if last := p.Verdict.Features.LastSeen; span > 0 && !last.IsZero() {
			from = last.Add(-span)
		}
		p.Agents, p.MoreAgents = cut(p.Verdict.Agents, maxAgentsShown)
		p.NSAgents, p.MoreNSAgents = cut(p.Verdict.NSAgents, maxAgentsShown)
		p.NameServers, p.MoreNameServers = cut(p.Verdict.NameServers, maxAgentsShown)
	}
	if p.Network, err = networks.Of(store, name); err != nil {
		return p, false, err
	}
	if p.Network != nil {
		p.Siblings, p.MoreSiblings = cut(p.Network.Siblings(name), maxAgentsShown)
	}
	_, delisted, err := store.ListingState([]string{name})
	if err != nil {
		return p, false, err
	}
	p.Delisted = delisted[name]
	err = classify.History(store, name, func(e classify.ListingEvent) error {
		if len(p.Log) == maxLogEvents {
			p.Log = slices.Delete(p.Log, 0, 1)
		}
		p.Log = append(p.Log, e)
		return nil
	})
	if err != nil {
		return p, false, err
	}
	if p.Seeded {
		if p.Timeline, err = BuildTimeline(store, meta, name, from, time.Time{}); err != nil {
			return p, false, err
		}
		p.Charts = renderCharts(p.Timeline, suffix)
	}
	return p, true, nil
}

func (s *server) domain(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("name")
	name, err := normalizeName(raw)
	if err != nil {
		s.httpError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if name != raw {
		u := url.URL{Path: "/domain/" + name, RawQuery: r.URL.RawQuery}
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
		return
	}
	spanName := r.URL.Query().Get("span")
	span := s.opts.Span
	if spanName != "" {
		i := slices.IndexFunc(spans, func(x spanChoice) bool { return x.Name == spanName })
		if i < 0 {
			s.httpError(w, r, http.StatusBadRequest, fmt.Sprintf("unknown span %q (want 1d, 7d, 30d or all)", spanName))
			return
		}
		span = spans[i].D
	}
	p, ok, err := loadDomain(s.store, s.meta, name, span, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		s.httpError(w, r, http.StatusNotFound, fmt.Sprintf("%s is neither a measured domain nor a classified zone", name))
		return
	}
	p.Span = spanName
	if p.Span == "" {
		p.Span = spanLabel(span) + " (default)"
	}
	for _, x := range spans {
		p.Spans = append(p.Spans, x.Name)
	}
	p.JSONLink = "/domain/" + name + "?format=json"
	if spanName != "" {
		p.JSONLink += "&span=" + url.QueryEscape(spanName)
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, p.json())
		return
	}
	s.render(w, r, http.StatusOK, "domain.html", name, "", p)
}

// json is the page as `?format=json` returns it.
func (p domainPage) json() any {
	out := struct {
		Domain     string                  `json:"domain"`
		Seeded     bool                    `json:"seeded"`
		Record     *domainRecordJSON       `json:"record,omitempty"`
		Verdict    *classify.Verdict       `json:"verdict"`
		Listed     bool                    `json:"listed"`
		Delisted   bool                    `json:"delisted"`
		ListingLog []classify.ListingEvent `json:"listing_log"`
		Timeline   *timelineJSON           `json:"timeline,omitempty"`
		// Network is the id of its flux network, Siblings the network's
		// other domains.
		Network  string   `json:"network,omitempty"`
		Siblings []string `json:"siblings,omitempty"`
	}{Domain: p.Name, Seeded: p.Seeded, Verdict: p.Verdict, Listed: p.Listed, Delisted: p.Delisted, ListingLog: p.Log}
	if p.Network != nil {
		out.Network = p.Network.ID
		for _, d := range p.Network.Domains {
			if d != p.Name {
				out.Siblings = append(out.Siblings, d)
			}
		}
	}
	if out.ListingLog == nil {
		out.ListingLog = []classify.ListingEvent{}
	}
	if p.Seeded {
		out.Record = &domainRecordJSON{FirstSeen: p.Record.FirstSeen, NextDue: p.Record.NextDue, Active: p.Record.Active,
			Dark: p.Record.IsDark(), Unanswered: p.Record.Dark, Sources: p.Record.Sources}
	}
	if p.Timeline != nil {
		out.Timeline = p.Timeline.json()
	}
	return out
}

type domainRecordJSON struct {
	FirstSeen time.Time `json:"first_seen"`
	NextDue   time.Time `json:"next_due,omitzero"`
	Active    bool      `json:"active"`
	// Dark: no vantage answered the last Unanswered measurements, at least
	// storage.DarkAfter of them.
	Dark       bool     `json:"dark"`
	Unanswered int      `json:"unanswered_measurements"`
	Sources    []string `json:"sources"`
}

type cellJSON struct {
	Addresses []string `json:"addresses"`
	More      int      `json:"more,omitempty"`
	Probes    int      `json:"probes,omitempty"`
	Failed    int      `json:"failed,omitempty"`
	Error     string   `json:"error,omitempty"`
}

type columnJSON struct {
	Start     time.Time  `json:"start"`
	End       time.Time  `json:"end"`
	Addresses int        `json:"addresses"`
	Networks  int        `json:"networks"`
	Countries int        `json:"countries"`
	Vantages  []cellJSON `json:"vantages"`
	NS        []cellJSON `json:"ns,omitempty"`
}

type timelineJSON struct {
	From            time.Time      `json:"from"`
	To              time.Time      `json:"to"`
	Probes          int            `json:"probes"`
	Vantages        []string       `json:"vantages"`
	NSHosts         []string       `json:"ns_hosts,omitempty"`
	RoundsPerColumn int            `json:"rounds_per_column"`
	Networks        []NetworkCount `json:"networks"`
	Columns         []columnJSON   `json:"columns"`
}

func cellsJSON(cells []Cell, rows int) []cellJSON {
	out := make([]cellJSON, rows)
	for i := range out {
		out[i].Addresses = []string{}
		if i >= len(cells) {
			continue
		}
		c := cells[i]
		for _, a := range c.Addrs {
			out[i].Addresses = append(out[i].Addresses, a.String())
		}
		out[i].More, out[i].Probes, out[i].Failed, out[i].Error = c.More, c.Probes, c.Failed, c.Err
	}
	return out
}

func (t *Timeline) json() *timelineJSON {
	out := &timelineJSON{From: t.From, To: t.To, Probes: t.Probes, Vantages: t.Vantages, NSHosts: t.NSHosts,
		RoundsPerColumn: t.RoundsPerColumn, Networks: t.TopNetworks(legendSize), Columns: []columnJSON{}}
	if out.Vantages == nil {
		out.Vantages = []string{}
	}
	for i := range t.Columns {
		c := &t.Columns[i]
		a, n, k := c.Counts()
		cj := columnJSON{Start: c.Start, End: c.End, Addresses: a, Networks: n, Countries: k,
			Vantages: cellsJSON(c.Cells, len(t.Vantages))}
		if len(t.NSHosts) > 0 {
			cj.NS = cellsJSON(c.NS, len(t.NSHosts))
		}
		out.Columns = append(out.Columns, cj)
	}
	return out
}

// cut returns up to n of xs and how many it left out.
func cut(xs []string, n int) ([]string, int) {
	if len(xs) <= n {
		return xs, 0
	}
	return xs[:n], len(xs) - n
}

// spanLabel names a span the way the span links do.
func spanLabel(d time.Duration) string {
	for _, x := range spans {
		if x.D == d {
			return x.Name
		}
	}
	return d.String()
}
