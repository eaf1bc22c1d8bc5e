package web

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The flux networks: a table of them, largest first, and a page per
// network with its domains, its agents, its log and a picture of which
// domain resolved to which agent.

// networkRow is one network of the networks table.
type networkRow struct {
	ID        string    `json:"id"`
	Domains   int       `json:"domains"`
	Agents    int       `json:"agents"`
	NSAgents  int       `json:"ns_agents"`
	ASNs      int       `json:"asns"`
	Countries int       `json:"countries"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Latest    string    `json:"latest_change,omitempty"`
	Sample    []string  `json:"sample"`
}

// networksPage is the data of the networks table.
type networksPage struct {
	Rows       []networkRow
	Total      int // networks in all
	Shown      string
	Next, Prev string
	First      string // unused: pages are numbered
	MinDomains int
}

// maxSampleDomains is how many of a network's domains its row names.
const maxSampleDomains = 4

func rowOfNetwork(n networks.Network) networkRow {
	r := networkRow{ID: n.ID, Domains: len(n.Domains), Agents: len(n.Agents), NSAgents: len(n.NSAgents), ASNs: len(n.ASNs),
		Countries: len(n.Countries), FirstSeen: n.FirstSeen, LastSeen: n.LastSeen}
	r.Sample, _ = cut(n.Domains, maxSampleDomains)
	if k := len(n.Events); k > 0 {
		r.Latest = n.Events[k-1].Kind + " " + n.Events[k-1].At.UTC().Format("2006-01-02 15:04:05Z")
	}
	return r
}

func (s *server) networks(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	page, minDomains := 1, 1
	for _, p := range []struct {
		key string
		to  *int
	}{{"page", &page}, {"min", &minDomains}} {
		if raw := v.Get(p.key); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 || n > 1<<20 {
				s.httpError(w, r, http.StatusBadRequest, fmt.Sprintf("%s must be a whole number from 1", p.key))
				return
			}
			*p.to = n
		}
	}
	all, err := networks.List(s.store)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var kept []networks.Network
	for _, n := range all {
		if len(n.Domains) >= minDomains {
			kept = append(kept, n)
		}
	}
	p := networksPage{Total: len(kept), MinDomains: minDomains, Rows: []networkRow{}}
	from := min((page-1)*s.opts.PageSize, len(kept))
	to := min(from+s.opts.PageSize, len(kept))
	for _, n := range kept[from:to] {
		p.Rows = append(p.Rows, rowOfNetwork(n))
	}
	link := func(page int) string {
		q := url.Values{}
		if minDomains > 1 {
			q.Set("min", strconv.Itoa(minDomains))
		}
		q.Set("page", strconv.Itoa(page))
		if wantsJSON(r) {
			q.Set("format", "json")
		}
		return "/networks?" + q.Encode()
	}
	if to < len(kept) {
		p.Next = link(page + 1)
	}
	if page > 1 {
		p.Prev = link(page - 1)
	}
	if len(p.Rows) > 0 {
		p.Shown = fmt.Sprintf("%d–%d of %d", from+1, to, len(kept))
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, struct {
			Networks []networkRow `json:"networks"`
			Total    int          `json:"total"`
			Next     string       `json:"next,omitempty"`
			Prev     string       `json:"prev,omitempty"`
		}{p.Rows, p.Total, p.Next, p.Prev})
		return
	}
	s.render(w, r, http.StatusOK, "networks.html", "Flux networks", "networks", p)
}

// networkDomain is one domain of a network page.
type networkDomain struct {
	Name       string   `json:"domain"`
	Verdict    string   `json:"verdict,omitempty"`
	Confidence float64  `json:"confidence,omitempty"`
	Listed     bool     `json:"listed"`
	Agents     []string `json:"-"` // of its verdict: the picture's
}

// networkPage is the data of a network's page and of its section in a
// report.
type networkPage struct {
	Network  networks.Network
	Domains  []networkDomain
	Agents   []string
	NSAgents []string
	// MoreAgents and MoreNSAgents are how many the lists leave out.
	MoreAgents, MoreNSAgents int
	Picture                  template.HTML
	Report                   bool
	Anchor                   string
}

// maxNetworkDomains bounds the domains a network page reads verdicts of
// (and draws); the list names every domain.
const maxNetworkDomains = 60

// loadNetwork gathers what a page shows of network n; suffix is appended
// to the picture's element id.
func loadNetwork(store *storage.Store, meta *ipmeta.DB, n networks.Network, suffix string) (networkPage, error) {
	p := networkPage{Network: n}
	for i, d := range n.Domains {
		nd := networkDomain{Name: d}
		if i < maxNetworkDomains {
			v, err := classify.Load(store, d)
			if err != nil {
				return p, err
			}
			if v != nil {
				nd.Verdict, nd.Confidence, nd.Listed = v.Verdict, v.Confidence, v.Listed()
				nd.Agents = append(append(nd.Agents, v.Agents...), v.NSAgents...)
			}
		}
		p.Domains = append(p.Domains, nd)
	}
	agents := make([]string, len(n.Agents))
	for i, a := range n.Agents {
		agents[i] = a.String()
	}
	ns := make([]string, len(n.NSAgents))
	for i, a := range n.NSAgents {
		ns[i] = a.String()
	}
	p.Agents, p.MoreAgents = cut(agents, maxAgentsShown)
	p.NSAgents, p.MoreNSAgents = cut(ns, maxAgentsShown)
	p.Picture = drawNetwork(p, meta, suffix)
	return p, nil
}

// networkID matches the ids the networks package gives.
var networkID = regexp.MustCompile(`^net-[0-9]{1,19}$`)

func (s *server) network(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !networkID.MatchString(id) {
		s.httpError(w, r, http.StatusBadRequest, "not a network id: net- and a number, as the networks page lists them")
		return
	}
	n, err := networks.Get(s.store, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if n == nil {
		s.httpError(w, r, http.StatusNotFound, fmt.Sprintf("no flux network %s now (networks merge, split and end: see the networks page)", id))
		return
	}
	p, err := loadNetwork(s.store, s.meta, *n, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, struct {
			networks.Network
			DomainVerdicts []networkDomain `json:"domain_verdicts"`
		}{*n, p.Domains})
		return
	}
	s.render(w, r, http.StatusOK, "network.html", "Flux network "+id, "networks", p)
}
