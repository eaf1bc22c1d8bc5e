package classify

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Zone-level classification. Measurements often hold one lookup each of
// many names under one flux zone (random subdomains answered by a wildcard,
// or CNAMEs to the zone's apex): no single name has enough rounds, but
// together they are evidence about the registrable domain, which is what a
// block list should hold (with its subdomains). Run therefore also
// classifies every registrable domain (public suffix list, private
// suffixes included, so customers of one hoster stay apart) that has at
// least two measured names under it, from all their probes together.

// zoneOf returns the registrable domain of name (crawler.Zone), or "" if
// it has none.
func zoneOf(name string) string {
	zone, _, _ := crawler.Zone(name)
	return zone
}

// maxZoneNames bounds how many names' probes judge one zone: a zone with
// a million seeded names is judged on the first maxZoneNames of them (in
// name order), so memory stays bounded whatever the seed list.
const maxZoneNames = 256

// zoneGroup is what Run's pass over the domains keeps of one zone: the
// first names under it and how many there are.
type zoneGroup struct {
	names  []string
	total  int
	benign int  // names judged benign on their own
	apex   bool // the zone itself is seeded, and left to classifyZones
}

// zoneGroups collects, during Run's pass over the domains, the names under
// each registrable domain other than the domain itself.
type zoneGroups map[string]*zoneGroup

func (g zoneGroups) add(name, verdict string) {
	zone := zoneOf(name)
	if zone == "" || zone == name {
		return
	}
	z := g[zone]
	if z == nil {
		z = &zoneGroup{}
		g[zone] = z
	}
	z.total++
	if verdict == Benign {
		z.benign++
	}
	if len(z.names) < maxZoneNames {
		z.names = append(z.names, name)
	}
}

// zonesWithNames returns the registrable domains that have an active
// domain under them, and how many active domains there are. Those that are active domains themselves are apexes
// that Run judges once, as zones, with their names.
func zonesWithNames(store *storage.Store) (zones map[string]bool, active int, err error) {
	zones = map[string]bool{}
	err = store.ActiveNames(func(name string) error {
		active++
		if zone := zoneOf(name); zone != "" && zone != name {
			zones[zone] = true
		}
		return nil
	})
	return zones, active, err
}

// apex notes that the zone itself is seeded and active: classifyZones
// judges it with its names, or alone if they are gone.
func (g zoneGroups) apex(zone string) {
	z := g[zone]
	if z == nil {
		z = &zoneGroup{}
		g[zone] = z
	}
	z.apex = true
}

// classifyZones classifies the registrable domains of groups that hold at
// least two measured names (the domain itself counts when it is seeded),
// and stores their verdicts like Run's.
func (c *Classifier) classifyZones(ctx context.Context, store *storage.Store, groups zoneGroups, window time.Duration, now time.Time,
	counts map[string]int, each func(Verdict) error, nets *runNetworks) error {
	zones := make([]string, 0, len(groups))
	for z := range groups {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	var batch []Verdict
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := c.save(store, batch, window, now, counts); err != nil {
			return err
		}
		for _, v := range batch {
			counts[v.Verdict]++
			if each != nil {
				if err := each(v); err != nil {
					return err
				}
			}
		}
		batch = batch[:0]
		return ctx.Err()
	}
	for _, zone := range zones {
		group := groups[zone]
		names, total := group.names, group.total
		if group.apex { // seeded, and left out of Run's pass over the domains
			names, total = append(names, zone), total+1
		} else if total < 2 {
			continue
		}
		// The zone's window ends at the last probe of any of its names.
		var anchor time.Time
		for _, name := range names {
			last, ok, err := store.LastProbe(name, now.Add(time.Nanosecond))
			if err != nil {
				return err
			}
			if ok && last.After(anchor) {
				anchor = last
			}
		}
		from := anchor.Add(-window)
		var probes []obs.Probe
		for _, name := range names {
			err := store.History(name, from, time.Time{}, func(p obs.Probe) error {
				if p.Start.After(now) {
					return nil
				}
				// The name's own observations become the zone's; those of
				// its name servers and CNAME targets keep their names.
				p.Domain = zone
				for i := range p.Observations {
					o := &p.Observations[i]
					if o.Name != name {
						continue
					}
					o.Name = zone
					// And the records it owns (the NS records above all,
					// which say whose the name servers are): History
					// hands each probe its own copy of them.
					for j := range o.Answer {
						if o.Answer[j].Name == name {
							o.Answer[j].Name = zone
						}
					}
				}
				probes = append(probes, p)
				return nil
			})
			if err != nil {
				return fmt.Errorf("classifying zone %s: %w", zone, err)
			}
		}
		slices.SortStableFunc(probes, func(a, b obs.Probe) int { return a.Start.Compare(b.Start) })
		v, sets := c.classify(zone, probes, now, nets.known)
		if total == 1 { // a seeded zone whose names are gone: judged alone
			nets.note(v, sets)
			batch = append(batch, v)
			if len(batch) == runBatch {
				if err := flush(); err != nil {
					return err
				}
			}
			continue
		}
		if IsFlux(v.Verdict) && group.benign > 0 {
			// A zone whose own names include benign ones is not an
			// attacker's zone: flux under it is listed name by name, the
			// zone is not blocked as a whole.
			v.Evidence = fmt.Sprintf("%d of its names are benign on their own, so the zone is not listed as a whole; merged: %s", group.benign, v.Evidence)
			v.Verdict, v.Confidence, v.Agents, v.NameServers, v.NSAgents = Benign, 0.5, nil, nil, nil
			v.Network, v.NetworkAgentsSeen = "", 0
			v.Score = score(Benign, v.Features, c.rules(), false)
		}
		// A zone's flux verdict makes it a member, with the agents of its
		// names; its other verdicts add nothing to the safeguards' counts,
		// which its names gave already (a zone judged benign for its benign
		// names holds its flux names' agents too).
		if IsFlux(v.Verdict) {
			nets.member(v, sets)
		}
		v.Names = total
		judged := ""
		if len(names) < total {
			judged = fmt.Sprintf(", the first %d judged", len(names))
		}
		v.Evidence = fmt.Sprintf("zone of %d measured names%s: %s", total, judged, v.Evidence)
		batch = append(batch, v)
		if len(batch) == runBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
