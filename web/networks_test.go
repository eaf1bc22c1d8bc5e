package web_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/web"
)

// largestNetwork returns the crawled world's largest flux network.
func largestNetwork(t *testing.T, w *world) networks.Network {
	t.Helper()
	nets, err := networks.List(w.store)
	if err != nil || len(nets) == 0 || len(nets[0].Domains) < 2 {
		t.Fatalf("the crawled world has no network of two domains: %v, %v", nets, err)
	}
	return nets[0]
}

// The networks page lists every network, largest first, each linking to
// its page; ?min=2 keeps those of two domains or more; JSON too.
func TestWebNetworksPage(t *testing.T) {
	w := crawledWorld(t)
	h := web.New(w.store, w.meta, web.Options{})
	nets, err := networks.List(w.store)
	if err != nil {
		t.Fatal(err)
	}
	doc := page(t, get(t, h, "/networks"), 200)
	table := byID(doc, "networks")
	if table == nil {
		t.Fatal("no networks table")
	}
	var ids []string
	for _, tr := range findAll(table, func(e *html.Node) bool { return e.Data == "tr" && attr(e, "data-network") != "" }) {
		ids = append(ids, attr(tr, "data-network"))
	}
	var want []string
	for _, n := range nets {
		want = append(want, n.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("networks page rows %v, want %v", ids, want)
	}
	if links := findAll(table, func(e *html.Node) bool { return e.Data == "a" && attr(e, "href") == "/network/"+nets[0].ID }); len(links) != 1 {
		t.Errorf("no link to %s", nets[0].ID)
	}
	var got struct {
		Networks []struct {
			ID      string `json:"id"`
			Domains int    `json:"domains"`
		} `json:"networks"`
		Total int `json:"total"`
	}
	rec := get(t, h, "/networks?format=json&min=2")
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, n := range got.Networks {
		if n.Domains < 2 {
			t.Errorf("min=2 listed %s of %d domains", n.ID, n.Domains)
		}
	}
	if got.Total == 0 || got.Total > len(nets) {
		t.Errorf("min=2: %d networks of %d", got.Total, len(nets))
	}
	// Pages of one row.
	small := web.New(w.store, w.meta, web.Options{PageSize: 1})
	doc = page(t, get(t, small, "/networks?page=2"), 200)
	if rows := findAll(doc, func(e *html.Node) bool { return e.Data == "tr" && attr(e, "data-network") != "" }); len(rows) != 1 || attr(rows[0], "data-network") != nets[1].ID {
		t.Errorf("page 2 of one row: %d rows", len(rows))
	}
	for _, bad := range []string{"/networks?page=0", "/networks?min=x"} {
		if rec := get(t, h, bad); rec.Code != 400 {
			t.Errorf("%s: status %d", bad, rec.Code)
		}
	}
}

// A network's page draws its domains against its agents, names every
// domain, and links to each; the domain page names its network and
// siblings.
func TestWebNetworkPage(t *testing.T) {
	w := crawledWorld(t)
	h := web.New(w.store, w.meta, web.Options{})
	n := largestNetwork(t, w)
	doc := page(t, get(t, h, "/network/"+n.ID), 200)
	svg := byID(doc, "network")
	if svg == nil {
		t.Fatal("no picture")
	}
	marks := findAll(svg, func(e *html.Node) bool { return e.Data == "rect" && hasClass(e, "m") })
	if attr(svg, "data-marks") != strconv.Itoa(len(marks)) || len(marks) < len(n.Domains) {
		t.Errorf("picture: %d marks, data-marks %s, %d domains", len(marks), attr(svg, "data-marks"), len(n.Domains))
	}
	if got := attr(svg, "data-domains"); got != strconv.Itoa(len(n.Domains)) {
		t.Errorf("picture of %s domains, want %d", got, len(n.Domains))
	}
	if got := tableDomains(t, doc, "network-domains"); !slices.Equal(got, n.Domains) {
		t.Errorf("domains %v, want %v", got, n.Domains)
	}
	// Shared agents: some column holds more than one domain.
	shared := 0
	for _, bar := range findAll(svg, func(e *html.Node) bool { return e.Data == "rect" && hasClass(e, "shared") }) {
		if h, _ := strconv.ParseFloat(attr(bar, "height"), 64); h > 30.0/float64(len(n.Domains))+0.01 {
			shared++
		}
	}
	if shared == 0 {
		t.Error("no agent of the picture serves two domains: the network's reason to be is not shown")
	}
	var j struct {
		ID             string   `json:"id"`
		Domains        []string `json:"domains"`
		Agents         []string `json:"agents"`
		DomainVerdicts []struct {
			Domain  string `json:"domain"`
			Verdict string `json:"verdict"`
		} `json:"domain_verdicts"`
	}
	if err := json.Unmarshal(get(t, h, "/network/"+n.ID+"?format=json").Body.Bytes(), &j); err != nil || j.ID != n.ID || len(j.Agents) != len(n.Agents) || len(j.DomainVerdicts) != len(n.Domains) {
		t.Errorf("JSON: %+v, %v", j, err)
	}
	for target, code := range map[string]int{"/network/net-999999": 404, "/network/bad": 400, "/network/net-1x": 400} {
		if rec := get(t, h, target); rec.Code != code {
			t.Errorf("%s: status %d, want %d", target, rec.Code, code)
		}
	}
	// The domain page names the network and the siblings.
	d := n.Domains[0]
	body := get(t, h, "/domain/"+d).Body.String()
	if !strings.Contains(body, `href="/network/`+n.ID+`"`) || !strings.Contains(body, `href="/domain/`+n.Domains[1]+`"`) {
		t.Errorf("the page of %s does not name its network %s and sibling %s", d, n.ID, n.Domains[1])
	}
	var dj struct {
		Network  string   `json:"network"`
		Siblings []string `json:"siblings"`
		Verdict  struct {
			Network string `json:"network"`
		} `json:"verdict"`
	}
	if err := json.Unmarshal(get(t, h, "/domain/"+d+"?format=json").Body.Bytes(), &dj); err != nil || dj.Network != n.ID || dj.Verdict.Network != n.ID || !slices.Equal(dj.Siblings, n.Domains[1:]) {
		t.Errorf("domain JSON: %+v, %v", dj, err)
	}
}

// The report holds the networks: a table of all and a picture of the
// largest.
func TestReportHoldsNetworks(t *testing.T) {
	w := crawledWorld(t)
	n := largestNetwork(t, w)
	var b bytes.Buffer
	if err := web.WriteReport(&b, w.store, w.meta, web.ReportOptions{MaxDomains: 1, Now: func() time.Time { return time.Unix(0, 0) }}); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if rows := findAll(doc, func(e *html.Node) bool { return e.Data == "tr" && attr(e, "data-network") == n.ID }); len(rows) != 1 {
		t.Errorf("the report's network table has %d rows of %s", len(rows), n.ID)
	}
	section := findAll(doc, func(e *html.Node) bool { return e.Data == "article" && attr(e, "data-network") == n.ID })
	if len(section) != 1 || len(findAll(section[0], func(e *html.Node) bool { return e.Data == "svg" && hasClass(e, "network") })) != 1 {
		t.Errorf("no drawn section for %s", n.ID)
	}
	if len(findAll(section[0], func(e *html.Node) bool { return e.Data == "a" })) != 0 {
		t.Error("the report links into the web view")
	}
}
