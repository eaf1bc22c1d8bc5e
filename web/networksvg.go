package web

import (
	"cmp"
	"fmt"
	"html"
	"html/template"
	"net/netip"
	"slices"
	"strings"

	"github.com/fluxwatch/fluxwatch/ipmeta"
)

// The picture of a flux network is a matrix: a row per domain, a column
// per agent, a square where the domain resolved to the agent. Columns are
// grouped by the agent's network (ASN, or /16 without a table) and take
// its color; the agents that serve the most domains come first within
// each group, so the shared agents (what makes the domains one network)
// stand out as full columns. A bar under each column counts its domains.
// Addresses the domains' verdicts hold that the safeguards left out (names
// that are not flux use them too) are drawn grey.

// Bounds of the picture.
const (
	maxPictureAgents  = 240
	maxPictureDomains = 40
	pictureLabelWidth = 220
)

// drawNetwork draws p's domains against their agents.
func drawNetwork(p networkPage, meta *ipmeta.DB, suffix string) template.HTML {
	type column struct {
		addr    netip.Addr
		network string
		domains int
	}
	domains := p.Domains
	if len(domains) > maxPictureDomains {
		domains = domains[:maxPictureDomains]
	}
	uses := map[netip.Addr]map[int]bool{} // agent → rows
	for i, d := range domains {
		for _, s := range d.Agents {
			a, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			if uses[a] == nil {
				uses[a] = map[int]bool{}
			}
			uses[a][i] = true
		}
	}
	agent := map[netip.Addr]bool{}
	for _, list := range [][]netip.Addr{p.Network.Agents, p.Network.NSAgents} {
		for _, a := range list {
			agent[a] = true
		}
	}
	t := newTimeline("", meta) // for its network names
	var cols []column
	for a, rows := range uses {
		network, _ := t.network(a)
		cols = append(cols, column{a, network, len(rows)})
	}
	// The most shared agents are drawn when there are too many.
	slices.SortFunc(cols, func(x, y column) int { return cmp.Or(y.domains-x.domains, x.addr.Compare(y.addr)) })
	if len(cols) > maxPictureAgents {
		cols = cols[:maxPictureAgents]
	}
	// Grouped by network, the largest group first.
	size := map[string]int{}
	for _, c := range cols {
		size[c.network]++
	}
	slices.SortFunc(cols, func(x, y column) int {
		return cmp.Or(size[y.network]-size[x.network], strings.Compare(x.network, y.network), y.domains-x.domains, x.addr.Compare(y.addr))
	})
	cellW := min(max(float64(chartWidth-pictureLabelWidth-rightMargin)/float64(max(len(cols), 1)), 2), 12)
	cellH := 12.0
	barH := 30.0
	height := float64(len(domains))*cellH + barH + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="network%s" class="chart network" viewBox="0 0 %d %.0f" width="%d" height="%.0f" role="img" aria-label="%s" data-network="%s" data-domains="%d" data-agents="%d">`,
		suffix, chartWidth, height, chartWidth, height,
		html.EscapeString(fmt.Sprintf("Domains of flux network %s against the agents they resolved to", p.Network.ID)),
		html.EscapeString(p.Network.ID), len(domains), len(cols))
	for i, d := range domains {
		y := float64(i) * cellH
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect class="band" x="%d" y="%.1f" width="%.1f" height="%.1f" fill="#f3f4f6"/>`, pictureLabelWidth, y, cellW*float64(len(cols)), cellH)
		}
		label := d.Name
		if len(label) > 34 {
			label = label[:33] + "…"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" class="label">%s</text>`, pictureLabelWidth-6, y+cellH-3, html.EscapeString(label))
	}
	marks := 0
	for j, c := range cols {
		x := pictureLabelWidth + float64(j)*cellW
		color, note := networkColor(c.network), ""
		if !agent[c.addr] {
			// An address the safeguards left out (benign names use it too).
			color, note = "#c4c4c4", " · not an agent: names that are not flux resolve to it"
		}
		for i := range domains {
			if !uses[c.addr][i] {
				continue
			}
			marks++
			fmt.Fprintf(&b, `<rect class="m" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
				x, float64(i)*cellH+1, max(cellW-1, 1), cellH-2, color,
				html.EscapeString(fmt.Sprintf("%s · %s · %s%s", domains[i].Name, c.addr, c.network, note)))
		}
		h := barH * float64(c.domains) / float64(max(len(domains), 1))
		base := float64(len(domains))*cellH + 4
		fmt.Fprintf(&b, `<rect class="shared" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
			x, base+barH-h, max(cellW-1, 1), h, color, html.EscapeString(fmt.Sprintf("%s (%s): %d of %d domains", c.addr, c.network, c.domains, len(domains))))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" class="tick">domains per agent</text>`, pictureLabelWidth-6, float64(len(domains))*cellH+4+barH)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick">%d agents in %d networks%s</text>`, pictureLabelWidth, height-4, len(cols), len(size),
		html.EscapeString(map[bool]string{true: fmt.Sprintf(" (the %d most shared drawn)", maxPictureAgents), false: ""}[len(uses) > maxPictureAgents]))
	b.WriteString(`</svg>`)
	out := b.String()
	out = strings.Replace(out, `data-agents=`, fmt.Sprintf(`data-marks="%d" data-agents=`, marks), 1)
	return template.HTML(out)
}
