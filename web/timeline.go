package web

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Bounds of a timeline: whatever the length of a domain's history, the
// charts draw at most maxColumns columns, each holding at most maxStack
// addresses per vantage or name server, and keep at most maxSet addresses
// per column for the counts. Columns are rounds (one probe per vantage)
// until there are too many; then neighbours merge, two rounds a column,
// then four, and so on.
const (
	maxColumns  = 160
	maxStack    = 8
	maxSet      = 512
	maxVantages = 64
	maxNSHosts  = 32
	maxNetworks = 4096
)

// Timeline is a domain's measured history reduced to what its charts draw.
type Timeline struct {
	Domain   string
	From, To time.Time // the first and the last probe drawn
	Probes   int
	// Vantages are the rows of the address chart, sorted; more than
	// maxVantages are counted in MoreVantages and not drawn.
	Vantages     []string
	MoreVantages int
	// NSHosts are the rows of the name-server chart, in order of first
	// appearance; more than maxNSHosts are counted in MoreNSHosts.
	NSHosts     []string
	MoreNSHosts int
	Columns     []Column
	// RoundsPerColumn is how many rounds one column holds (1, 2, 4, …).
	RoundsPerColumn int
	// ASNTable and CountryTable say what the IP tables could tell.
	ASNTable, CountryTable bool
	// Networks counts the marks of each network (an ASN, or a /16 or /48
	// when the ASN is unknown), for the legend.
	Networks map[string]int

	vantageIdx map[string]int
	nsIdx      map[string]int
	meta       *ipmeta.DB
}

// Column is one round (or several merged rounds) of probes.
type Column struct {
	Start, End time.Time
	// Cells are indexed like Timeline.Vantages; NS like Timeline.NSHosts.
	Cells []Cell
	NS    []Cell
	// Addresses, Networks and Countries are the distinct values seen in
	// the column through all vantages (at most maxSet addresses are kept).
	Addresses map[netip.Addr]bool
	Networks  map[string]bool
	Countries map[string]bool
	probes    map[int]int // per vantage index
}

// Cell is what one vantage (or one name server) showed in a column.
type Cell struct {
	Addrs  []netip.Addr // sorted, at most maxStack
	More   int          // addresses beyond Addrs
	Probes int
	Failed int    // probes whose own A/AAAA queries all failed
	Err    string // the last failure's class
	Seen   bool   // for name servers: named by an NS answer or referral
}

// Counts returns the distinct addresses, networks and countries of a column.
func (c *Column) Counts() (addrs, networks, countries int) {
	return len(c.Addresses), len(c.Networks), len(c.Countries)
}

// BuildTimeline reads the probes of domain whose start lies in [from, to)
// (zero to: no end) and reduces them to a Timeline. Memory is bounded
// whatever the length of the history.
func BuildTimeline(store *storage.Store, meta *ipmeta.DB, domain string, from, to time.Time) (*Timeline, error) {
	t := newTimeline(domain, meta)
	err := store.History(domain, from, to, func(p obs.Probe) error {
		t.add(p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the history of %s: %w", domain, err)
	}
	t.finish()
	return t, nil
}

func newTimeline(domain string, meta *ipmeta.DB) *Timeline {
	return &Timeline{Domain: domain, RoundsPerColumn: 1, ASNTable: meta.HasASN(), CountryTable: meta.HasCountry(),
		Networks: map[string]int{}, vantageIdx: map[string]int{}, nsIdx: map[string]int{}, meta: meta}
}

// network names the network of a: its ASN when the tables know it, else
// its /16 (IPv4) or /48 (IPv6). country is "" when unknown.
func (t *Timeline) network(a netip.Addr) (network, country string) {
	if info, ok := t.meta.Lookup(a); ok {
		country = info.Country
		if info.ASN != 0 {
			return fmt.Sprintf("AS%d", info.ASN), country
		}
	}
	bits := 16
	if !a.Unmap().Is4() {
		bits = 48
	}
	p, _ := a.Unmap().Prefix(bits)
	return p.String(), country
}

// vantage returns the row of a vantage, -1 when there are too many.
func (t *Timeline) vantage(v string) int {
	return rowOf(v, t.vantageIdx, &t.Vantages, &t.MoreVantages, maxVantages)
}

// nsHost returns the row of a name server, -1 when there are too many.
func (t *Timeline) nsHost(h string) int {
	return rowOf(h, t.nsIdx, &t.NSHosts, &t.MoreNSHosts, maxNSHosts)
}

// rowOf returns name's row in *rows, found through idx, adding it while
// there are fewer than limit; past that it counts the name once in *more
// and returns -1.
func rowOf(name string, idx map[string]int, rows *[]string, more *int, limit int) int {
	if i, ok := idx[name]; ok {
		return i
	}
	if len(*rows) >= limit {
		*more++
		idx[name] = -1
		return -1
	}
	idx[name] = len(*rows)
	*rows = append(*rows, name)
	return idx[name]
}

// column returns the column probe p belongs in: the last one, unless its
// vantage has already filled its share of it.
func (t *Timeline) column(p obs.Probe, vi int) *Column {
	if n := len(t.Columns); n > 0 {
		c := &t.Columns[n-1]
		if c.probes[vi] < t.RoundsPerColumn {
			return c
		}
	}
	if len(t.Columns) == maxColumns {
		t.merge()
		return t.column(p, vi)
	}
	t.Columns = append(t.Columns, Column{Start: p.Start, Addresses: map[netip.Addr]bool{},
		Networks: map[string]bool{}, Countries: map[string]bool{}, probes: map[int]int{}})
	return &t.Columns[len(t.Columns)-1]
}

// merge halves the number of columns by joining neighbours.
func (t *Timeline) merge() {
	t.RoundsPerColumn *= 2
	out := t.Columns[:0]
	for i := 0; i < len(t.Columns); i += 2 {
		c := t.Columns[i]
		if i+1 < len(t.Columns) {
			c.join(&t.Columns[i+1])
		}
		out = append(out, c)
	}
	clear(t.Columns[len(out):])
	t.Columns = out
}

func (c *Column) join(o *Column) {
	c.End = o.End
	for a := range o.Addresses {
		if len(c.Addresses) < maxSet {
			c.Addresses[a] = true
		}
	}
	maps.Copy(c.Networks, o.Networks)
	maps.Copy(c.Countries, o.Countries)
	for v, n := range o.probes {
		c.probes[v] += n
	}
	c.Cells = joinCells(c.Cells, o.Cells)
	c.NS = joinCells(c.NS, o.NS)
}

func joinCells(a, b []Cell) []Cell {
	for len(a) < len(b) {
		a = append(a, Cell{})
	}
	for i := range b {
		x := &a[i]
		x.Probes += b[i].Probes
		x.Failed += b[i].Failed
		x.Seen = x.Seen || b[i].Seen
		if b[i].Err != "" {
			x.Err = b[i].Err
		}
		for _, ad := range b[i].Addrs {
			x.addAddr(ad)
		}
		x.More += b[i].More
	}
	return a
}

// addAddr adds a to the cell unless it is there; past maxStack it only
// counts.
func (c *Cell) addAddr(a netip.Addr) bool {
	i, found := slices.BinarySearchFunc(c.Addrs, a, netip.Addr.Compare)
	if found {
		return false
	}
	if len(c.Addrs) >= maxStack {
		c.More++
		return false
	}
	c.Addrs = slices.Insert(c.Addrs, i, a)
	return true
}

func cellAt(cells *[]Cell, i int) *Cell {
	for len(*cells) <= i {
		*cells = append(*cells, Cell{})
	}
	return &(*cells)[i]
}

// add reduces one probe into its column.
func (t *Timeline) add(p obs.Probe) {
	if t.Probes == 0 || p.Start.Before(t.From) {
		t.From = p.Start
	}
	if p.Start.After(t.To) {
		t.To = p.Start
	}
	t.Probes++
	vi := t.vantage(p.Vantage)
	c := t.column(p, vi)
	c.probes[vi]++
	if p.Start.After(c.End) {
		c.End = p.Start
	}
	var cell *Cell
	if vi >= 0 {
		cell = cellAt(&c.Cells, vi)
		cell.Probes++
	}
	// The name servers this probe's NS answer or referral names, so that
	// their addresses can be told from the addresses of CNAME targets.
	hosts := map[string]bool{}
	for _, o := range p.Observations {
		if o.Name != p.Domain || o.Err != obs.OK || (o.QType != dns.TypeNS && o.Flags&obs.FlagDelegation == 0) {
			continue
		}
		for _, r := range o.Answer {
			if r.Type == dns.TypeNS {
				hosts[r.Data] = true
				if i := t.nsHost(r.Data); i >= 0 {
					cellAt(&c.NS, i).Seen = true
				}
			}
		}
	}
	answered, failed := false, false
	lastErr := ""
	for _, o := range p.Observations {
		delegation := o.Flags&obs.FlagDelegation != 0
		own := o.Name == p.Domain && !delegation && (o.QType == dns.TypeA || o.QType == dns.TypeAAAA)
		if o.Err != obs.OK {
			if own {
				failed, lastErr = true, o.Err.String()
			}
			continue
		}
		for _, r := range o.Answer {
			if r.Type != dns.TypeA && r.Type != dns.TypeAAAA {
				continue
			}
			a, err := netip.ParseAddr(r.Data)
			if err != nil {
				continue
			}
			switch {
			case own:
				answered = true
				t.addOwn(c, cell, a)
			case hosts[r.Name] || (!delegation && hosts[o.Name]):
				// A name server's address: from its own lookup (through
				// any CNAME), or glue.
				host := r.Name
				if !delegation && hosts[o.Name] {
					host = o.Name
				}
				if i := t.nsHost(host); i >= 0 {
					ns := cellAt(&c.NS, i)
					ns.Seen = true
					if ns.addAddr(a) {
						network, _ := t.network(a)
						t.countNetwork(network)
					}
				}
			}
		}
	}
	if cell != nil && failed && !answered {
		cell.Failed++
		cell.Err = lastErr
	}
}

// addOwn adds one of the domain's own addresses seen through a vantage.
func (t *Timeline) addOwn(c *Column, cell *Cell, a netip.Addr) {
	network, country := t.network(a)
	if len(c.Addresses) < maxSet {
		c.Addresses[a] = true
	}
	if len(c.Networks) < maxSet {
		c.Networks[network] = true
	}
	if country != "" {
		c.Countries[country] = true
	}
	if cell != nil && cell.addAddr(a) {
		t.countNetwork(network)
	}
}

func (t *Timeline) countNetwork(network string) {
	if _, ok := t.Networks[network]; ok || len(t.Networks) < maxNetworks {
		t.Networks[network]++
	}
}

// finish sorts the vantage rows (columns keep their cells in step).
func (t *Timeline) finish() {
	order := slices.Clone(t.Vantages)
	slices.Sort(order)
	if slices.Equal(order, t.Vantages) {
		return
	}
	newIdx := make([]int, len(t.Vantages))
	for i, v := range t.Vantages {
		newIdx[i], _ = slices.BinarySearch(order, v)
	}
	for ci := range t.Columns {
		c := &t.Columns[ci]
		cells := make([]Cell, len(t.Vantages))
		for i, cell := range c.Cells {
			cells[newIdx[i]] = cell
		}
		c.Cells = cells
	}
	t.Vantages = order
}

// TopNetworks returns up to n networks by their number of marks, most first.
func (t *Timeline) TopNetworks(n int) []NetworkCount {
	out := make([]NetworkCount, 0, len(t.Networks))
	for k, v := range t.Networks {
		out = append(out, NetworkCount{Network: k, Marks: v})
	}
	slices.SortFunc(out, func(a, b NetworkCount) int {
		return cmp.Or(cmp.Compare(b.Marks, a.Marks), cmp.Compare(a.Network, b.Network))
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// NetworkCount is one entry of a chart's legend.
type NetworkCount struct {
	Network string `json:"network"`
	Marks   int    `json:"marks"`
}
