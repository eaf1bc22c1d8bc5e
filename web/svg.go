package web

import (
	"fmt"
	"hash/fnv"
	"html"
	"html/template"
	"net/netip"
	"strings"
	"time"
)

// The charts are drawn on the server as inline SVG: no script, no
// external file, so a page or a report shows them as they are. Every piece
// of text that comes from the database goes through html.EscapeString;
// numbers are formatted here. That is what makes the template.HTML below
// safe to hand to html/template.

// Geometry shared by the charts, in SVG user units.
const (
	chartWidth  = 960
	labelWidth  = 180 // left margin, for vantage and name server labels
	rightMargin = 12
	axisHeight  = 26
	plotWidth   = chartWidth - labelWidth - rightMargin
)

// Charts are the SVG charts of one timeline.
type Charts struct {
	// Timeline has a band per vantage and a mark per address, colored by
	// network; Counts the distinct addresses, networks and countries per
	// column; NS the name servers and their addresses (empty when no NS
	// answer was seen).
	Timeline, Counts, NS template.HTML
	// Points is the number of address marks in Timeline.
	Points int
	Legend []LegendEntry
}

// LegendEntry maps a network to its color.
type LegendEntry struct {
	Network string
	Color   string
	Marks   int
}

// legendSize is how many networks a legend names.
const legendSize = 16

// renderCharts draws t. suffix is appended to the element ids ("" on the
// domain page; "-N" in a report that holds several domains).
func renderCharts(t *Timeline, suffix string) Charts {
	ch := Charts{}
	ch.Timeline, ch.Points = drawTimeline(t, suffix)
	ch.Counts = drawCounts(t, suffix)
	if len(t.NSHosts) > 0 {
		ch.NS = drawNS(t, suffix)
	}
	for _, n := range t.TopNetworks(legendSize) {
		ch.Legend = append(ch.Legend, LegendEntry{Network: n.Network, Color: networkColor(n.Network), Marks: n.Marks})
	}
	return ch
}

// networkColor gives every network a stable color of its own.
func networkColor(network string) string {
	h := fnv.New32a()
	h.Write([]byte(network))
	x := h.Sum32()
	return fmt.Sprintf("hsl(%d,%d%%,%d%%)", x%360, 55+(x>>9)%30, 36+(x>>17)%20)
}

// xScale maps times to x positions and gives the width of a mark.
type xScale struct {
	from  time.Time
	span  time.Duration
	markW float64
}

func newXScale(t *Timeline) xScale {
	s := xScale{from: t.From, span: t.To.Sub(t.From)}
	pitch := float64(plotWidth) / float64(max(len(t.Columns), 1))
	s.markW = min(max(pitch*0.7, 2), 14)
	return s
}

func (s xScale) x(at time.Time) float64 {
	usable := float64(plotWidth) - s.markW
	if s.span <= 0 {
		return labelWidth + usable/2
	}
	return labelWidth + usable*float64(at.Sub(s.from))/float64(s.span)
}

// axis draws the time axis at y with a few labelled ticks.
func (s xScale) axis(b *strings.Builder, y float64) {
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888"/>`, labelWidth, y, chartWidth-rightMargin, y)
	layout := "2006-01-02 15:04"
	if s.span < 36*time.Hour {
		layout = "15:04:05"
	}
	ticks := 6
	if s.span <= 0 {
		ticks = 1
	}
	for i := range ticks {
		at := s.from
		if ticks > 1 {
			at = s.from.Add(s.span * time.Duration(i) / time.Duration(ticks-1))
		}
		x := s.x(at) + s.markW/2
		anchor := "middle"
		switch {
		case ticks > 1 && i == 0:
			anchor = "start"
		case ticks > 1 && i == ticks-1:
			anchor = "end"
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`, x, y, x, y+4)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" class="tick">%s</text>`, x, y+16, anchor, at.UTC().Format(layout))
	}
	if s.span > 0 {
		fmt.Fprintf(b, `<text x="4" y="%.1f" class="tick">UTC, %s</text>`, y+16, html.EscapeString(s.from.UTC().Format("2006-01-02")))
	}
}

// bands lays out rows of stacked marks.
type bands struct {
	cellH, bandH float64
	stack        int
}

func newBands(rows, stack int) bands {
	stack = max(stack, 1)
	cellH := min(max(float64(int(260/float64(max(rows, 1)*stack))), 3), 9)
	return bands{cellH: cellH, bandH: float64(stack)*cellH + 8, stack: stack}
}

func (b bands) top(row int) float64 { return float64(row) * b.bandH }

func (b bands) markY(row, k int) float64 { return b.top(row) + 4 + float64(k)*b.cellH }

func (b bands) height(rows int) float64 { return float64(rows)*b.bandH + axisHeight }

// rowLabel draws a band's background and label.
func (b bands) rowLabel(w *strings.Builder, row int, label string) {
	if row%2 == 0 {
		fmt.Fprintf(w, `<rect class="band" x="%d" y="%.1f" width="%d" height="%.1f" fill="#f3f4f6"/>`, labelWidth, b.top(row), plotWidth, b.bandH)
	}
	if len(label) > 30 {
		label = label[:29] + "…"
	}
	fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end" class="label">%s</text>`, labelWidth-6, b.top(row)+b.bandH/2+4, html.EscapeString(label))
}

// mark draws one address.
func (t *Timeline) mark(w *strings.Builder, x, y, width, height float64, a netip.Addr, row string, c *Column) {
	network, country := t.network(a)
	title := a.String() + " · " + network
	if country != "" {
		title += " " + country
	}
	title += " · " + row + " · " + columnTime(c)
	fmt.Fprintf(w, `<rect class="m" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
		x, y, width, height, networkColor(network), html.EscapeString(title))
}

func columnTime(c *Column) string {
	if c.End.Sub(c.Start) < time.Second {
		return c.Start.UTC().Format("2006-01-02 15:04:05")
	}
	return c.Start.UTC().Format("2006-01-02 15:04:05") + "–" + c.End.UTC().Format("15:04:05")
}

func stackOf(cols []Column, cells func(*Column) []Cell) int {
	stack := 1
	for i := range cols {
		for _, cell := range cells(&cols[i]) {
			stack = max(stack, len(cell.Addrs))
		}
	}
	return stack
}

// drawTimeline draws a band per vantage, a column per round, and in each
// cell a mark per address the vantage saw, colored by network.
func drawTimeline(t *Timeline, suffix string) (template.HTML, int) {
	sx := newXScale(t)
	bd := newBands(len(t.Vantages), stackOf(t.Columns, func(c *Column) []Cell { return c.Cells }))
	var body strings.Builder
	for i, v := range t.Vantages {
		bd.rowLabel(&body, i, v)
	}
	points, failures := 0, 0
	for ci := range t.Columns {
		c := &t.Columns[ci]
		x := sx.x(c.Start)
		for vi, cell := range c.Cells {
			for k, a := range cell.Addrs {
				t.mark(&body, x, bd.markY(vi, k), sx.markW, bd.cellH-1, a, t.Vantages[vi], c)
				points++
			}
			if cell.More > 0 {
				fmt.Fprintf(&body, `<text x="%.1f" y="%.1f" class="more">+%d</text>`, x, bd.top(vi)+bd.bandH-1, cell.More)
			}
			if len(cell.Addrs) == 0 && cell.Failed > 0 {
				failures++
				fmt.Fprintf(&body, `<rect class="f" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#b91c1c"><title>%s: %d of %d probes failed (%s) · %s</title></rect>`,
					x, bd.top(vi)+bd.bandH/2-2, sx.markW, 4.0, html.EscapeString(t.Vantages[vi]), cell.Failed, cell.Probes,
					html.EscapeString(cell.Err), columnTime(c))
			}
		}
	}
	h := bd.height(len(t.Vantages))
	sx.axis(&body, h-axisHeight+2)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="timeline%s" class="chart timeline" viewBox="0 0 %d %.0f" width="%d" height="%.0f" role="img" aria-label="%s" data-domain="%s" data-points="%d" data-failures="%d" data-vantages="%d" data-columns="%d" data-rounds-per-column="%d">`,
		suffix, chartWidth, h+2, chartWidth, h+2,
		html.EscapeString(fmt.Sprintf("Addresses of %s over time, one band per vantage", t.Domain)), html.EscapeString(t.Domain),
		points, failures, len(t.Vantages), len(t.Columns), t.RoundsPerColumn)
	b.WriteString(body.String())
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), points
}

// drawCounts draws lines of the distinct addresses, networks and countries
// per column.
func drawCounts(t *Timeline, suffix string) template.HTML {
	const plotH = 140
	sx := newXScale(t)
	netLabel := "networks (/16)"
	if t.ASNTable {
		netLabel = "ASNs"
	}
	series := []struct {
		name, color string
		value       func(*Column) int
	}{
		{"addresses", "#c2410c", func(c *Column) int { a, _, _ := c.Counts(); return a }},
		{netLabel, "#1d4ed8", func(c *Column) int { _, n, _ := c.Counts(); return n }},
	}
	if t.CountryTable {
		series = append(series, struct {
			name, color string
			value       func(*Column) int
		}{"countries", "#15803d", func(c *Column) int { _, _, n := c.Counts(); return n }})
	}
	top := 1
	for i := range t.Columns {
		top = max(top, series[0].value(&t.Columns[i]), series[1].value(&t.Columns[i]))
	}
	y := func(v int) float64 { return 8 + plotH - float64(v)*plotH/float64(top) }
	var body strings.Builder
	for _, v := range []int{0, (top + 1) / 2, top} {
		fmt.Fprintf(&body, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e7eb"/><text x="%d" y="%.1f" text-anchor="end" class="tick">%d</text>`,
			labelWidth, y(v), chartWidth-rightMargin, y(v), labelWidth-6, y(v)+4, v)
	}
	points := 0
	for si, s := range series {
		var pts []string
		for ci := range t.Columns {
			c := &t.Columns[ci]
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx.x(c.Start)+sx.markW/2, y(s.value(c))))
		}
		if len(pts) > 1 {
			fmt.Fprintf(&body, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.color, strings.Join(pts, " "))
		}
		for ci := range t.Columns {
			c := &t.Columns[ci]
			fmt.Fprintf(&body, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%d %s · %s</title></circle>`,
				sx.x(c.Start)+sx.markW/2, y(s.value(c)), s.color, s.value(c), html.EscapeString(s.name), columnTime(c))
			points++
		}
		fmt.Fprintf(&body, `<text x="%d" y="%d" class="key" fill="%s">%s</text>`, 8, 20+16*si, s.color, html.EscapeString(s.name))
	}
	h := 8 + plotH + axisHeight
	sx.axis(&body, 8+plotH+2)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="counts%s" class="chart counts" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" data-points="%d">`,
		suffix, chartWidth, h+2, chartWidth, h+2,
		html.EscapeString("Distinct addresses, "+netLabel+" and countries per round of "+t.Domain), points)
	b.WriteString(body.String())
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// drawNS draws a band per name server and its addresses over time; a
// hollow mark where an NS answer named it but no address was seen.
func drawNS(t *Timeline, suffix string) template.HTML {
	sx := newXScale(t)
	bd := newBands(len(t.NSHosts), stackOf(t.Columns, func(c *Column) []Cell { return c.NS }))
	var body strings.Builder
	for i, h := range t.NSHosts {
		bd.rowLabel(&body, i, h)
	}
	points := 0
	for ci := range t.Columns {
		c := &t.Columns[ci]
		x := sx.x(c.Start)
		for hi, cell := range c.NS {
			for k, a := range cell.Addrs {
				t.mark(&body, x, bd.markY(hi, k), sx.markW, bd.cellH-1, a, t.NSHosts[hi], c)
				points++
			}
			if len(cell.Addrs) == 0 && cell.Seen {
				fmt.Fprintf(&body, `<rect class="n" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#6b7280"><title>%s named, no address · %s</title></rect>`,
					x, bd.markY(hi, 0), sx.markW, bd.cellH-1, html.EscapeString(t.NSHosts[hi]), columnTime(c))
			}
		}
	}
	h := bd.height(len(t.NSHosts))
	sx.axis(&body, h-axisHeight+2)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="ns%s" class="chart ns" viewBox="0 0 %d %.0f" width="%d" height="%.0f" role="img" aria-label="%s" data-points="%d" data-hosts="%d">`,
		suffix, chartWidth, h+2, chartWidth, h+2, html.EscapeString("Name servers of "+t.Domain+" and their addresses over time"),
		points, len(t.NSHosts))
	b.WriteString(body.String())
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
