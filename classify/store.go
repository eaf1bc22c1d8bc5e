package classify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// runBatch is how many domains Run classifies between two writes; it
// bounds the memory Run holds, whatever the number of domains.
const runBatch = 5000

// releaseEvery is how many batches Run reads before it lets the database
// pages it read leave the process's resident set.
const releaseEvery = 10

// Run classifies every active domain in store over the window ending at
// now, in name order, a batch at a time: each batch is read in one read
// transaction, its verdicts stored in one write transaction, then passed to
// each (which may be nil). It returns the number of verdicts of each kind.
// With an online fallback configured, the addresses the tables do not know
// are looked up first, outside any database transaction.
func (c *Classifier) Run(ctx context.Context, store *storage.Store, window time.Duration, now time.Time, each func(Verdict) error) (map[string]int, error) {
	from := now.Add(-window)
	if c.Fallback != nil {
		addrs, err := addresses(store, from, now)
		if err != nil {
			return nil, err
		}
		if _, err := c.Fallback.Prefetch(ctx, c.Meta, addrs); err != nil {
			return nil, fmt.Errorf("looking up ASNs online: %w", err)
		}
	}
	// A registrable domain that is seeded and has measured names under it
	// is judged once, as a zone, with them (classifyZones): it is found
	// first, so that the pass over the domains can leave it out.
	apexes, active, err := zonesWithNames(store)
	if err != nil {
		return nil, fmt.Errorf("classifying: %w", err)
	}
	nets, err := c.startNetworks(ctx, store, active)
	if err != nil {
		return nil, err
	}
	groups := zoneGroups{}
	counts := map[string]int{}
	batch := make([]Verdict, 0, runBatch)
	var probes []obs.Probe
	batches := 0
	for after := ""; ; {
		batch = batch[:0]
		last, err := store.ScanWindows(after, runBatch, window, now, func(d storage.Domain, history func(func(obs.Probe) error) error) error {
			if apexes[d.Name] {
				groups.apex(d.Name)
				return nil
			}
			probes = probes[:0]
			if err := history(func(p obs.Probe) error {
				if !p.Start.After(now) {
					probes = append(probes, p)
				}
				return nil
			}); err != nil {
				return err
			}
			v, sets := c.classify(d.Name, probes, now, nets.known)
			nets.note(v, sets)
			groups.add(d.Name, v.Verdict)
			batch = append(batch, v)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("classifying: %w", err)
		}
		if last == "" {
			if err := c.classifyZones(ctx, store, groups, window, now, counts, each, nets); err != nil {
				return counts, err
			}
			return counts, c.endNetworks(ctx, store, nets, now, counts)
		}
		after = last
		if len(batch) == 0 {
			continue // zone apexes only
		}
		if err := c.save(store, batch, window, now, counts); err != nil {
			return nil, err
		}
		for _, v := range batch {
			counts[v.Verdict]++
			if each != nil {
				if err := each(v); err != nil {
					return nil, err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return counts, err
		}
		if batches++; batches%releaseEvery == 0 {
			store.ReleaseMemory() // best effort: only the resident set is at stake
		}
	}
}

// CountNetworks is the key of the counts Run returns that holds how many
// flux networks the run found (none on a dry run, which stores none).
const CountNetworks = "networks"

// runNetworks is what Run keeps for the flux networks: the networks
// stored before it (for association), this run's flux domains, and the
// addresses of the others (for the safeguards).
type runNetworks struct {
	known   *networks.Index
	members []networks.Member
	stats   *networks.AddrStats
	active  int // the store's active domains
}

// startNetworks has the network builder, if any, prepare the store, then
// loads the known networks; the active domains size the safeguards'
// counts.
func (c *Classifier) startNetworks(ctx context.Context, store *storage.Store, active int) (*runNetworks, error) {
	size := active
	if c.Networks != nil && !c.DryRun {
		if err := c.Networks.Prepare(ctx, store); err != nil {
			return nil, fmt.Errorf("preparing the known flux networks: %w", err)
		}
		size = c.Networks.StatsSize(active)
	}
	known, err := networks.List(store)
	if err != nil {
		return nil, fmt.Errorf("reading the known flux networks: %w", err)
	}
	return &runNetworks{known: networks.NewIndex(known), stats: networks.StatsFor(size), active: active}, nil
}

// note takes a verdict of a seeded name in: a flux domain becomes a
// member, another's addresses go to the safeguards' counts.
func (n *runNetworks) note(v Verdict, sets agentSets) {
	if IsFlux(v.Verdict) {
		n.member(v, sets)
		return
	}
	if len(sets.addrs) > 0 {
		n.stats.Add(addrList(sets.addrs), v.Verdict == Benign)
	}
}

func (n *runNetworks) member(v Verdict, sets agentSets) {
	m := networks.Member{Domain: v.Domain, Agents: addrList(sets.addrs), Latest: sets.latest,
		FirstSeen: v.Features.FirstSeen, LastSeen: v.Features.LastSeen}
	if v.Verdict == DoubleFlux {
		m.NSAgents = addrList(sets.nsAddrs)
	}
	n.members = append(n.members, m)
}

// endNetworks groups the run's flux domains into networks and stores
// them, or has the network builder do it, unless the run is a dry one.
func (c *Classifier) endNetworks(ctx context.Context, store *storage.Store, n *runNetworks, now time.Time, counts map[string]int) error {
	if c.DryRun {
		return nil
	}
	if c.Networks != nil {
		built, err := c.Networks.Build(ctx, store, NetworkRun{Members: n.members, Stats: n.stats, Active: n.active, Now: now})
		if err != nil {
			return fmt.Errorf("building flux networks: %w", err)
		}
		counts[CountNetworks] = built
		return nil
	}
	nets, err := networks.Update(store, n.members, n.stats, now, networks.Options{Meta: c.Meta})
	if err != nil {
		return fmt.Errorf("building flux networks: %w", err)
	}
	counts[CountNetworks] = len(nets)
	return nil
}

// save stores a batch of verdicts, moving their listings on, unless the
// run is a dry one.
func (c *Classifier) save(store *storage.Store, batch []Verdict, window time.Duration, now time.Time, counts map[string]int) error {
	if c.DryRun {
		return nil
	}
	records, err := c.listingRecords(store, batch, window, now, counts)
	if err != nil {
		return err
	}
	if err := store.PutVerdicts(records); err != nil {
		return fmt.Errorf("storing verdicts: %w", err)
	}
	return nil
}

// Each calls fn with every stored verdict in name order, its Listing taken
// from the listed index (see Verdict.Listed) and its Network from the
// stored networks; with listedOnly, only the
// listed ones, read from the short records of the listed index, which keep
// the flux verdict each listing rests on.
func Each(store *storage.Store, listedOnly bool, fn func(Verdict) error) error {
	index, err := store.NetworkIndex()
	if err != nil {
		return err
	}
	if listedOnly {
		return store.Listed(func(domain string, b []byte) error {
			var v Verdict
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("listed record of %s: %w", domain, err)
			}
			v.Network = index[domain]
			return fn(v)
		})
	}
	return store.VerdictsAndListings(func(domain string, full, listed []byte) error {
		v, err := decodeVerdict(domain, full, listed)
		if err != nil {
			return err
		}
		v.Network = index[domain]
		return fn(v)
	})
}

// EachListed calls fn, in name order, for every listed domain with the
// short record its listing rests on and its latest verdict (as Each gives
// them), both read in one transaction: only the listed domains' verdicts
// are decoded.
func EachListed(store *storage.Store, fn func(listed, latest Verdict) error) error {
	index, err := store.NetworkIndex()
	if err != nil {
		return err
	}
	return store.VerdictsAndListings(func(domain string, full, listedRec []byte) error {
		if listedRec == nil {
			return nil
		}
		var listed Verdict
		if err := json.Unmarshal(listedRec, &listed); err != nil {
			return fmt.Errorf("listed record of %s: %w", domain, err)
		}
		latest, err := decodeVerdict(domain, full, listedRec)
		if err != nil {
			return err
		}
		listed.Network, latest.Network = index[domain], index[domain]
		return fn(listed, latest)
	})
}

// Load returns the stored verdict of domain, its Listing taken from the
// listed index and its Network from the stored networks, or nil when
// there is none.
func Load(store *storage.Store, domain string) (*Verdict, error) {
	full, listed, err := store.VerdictAndListing(domain)
	if err != nil || full == nil {
		return nil, err
	}
	v, err := decodeVerdict(domain, full, listed)
	if err != nil {
		return nil, err
	}
	if v.Network, err = store.NetworkOf(domain); err != nil {
		return nil, err
	}
	return &v, nil
}

// decodeVerdict decodes a full verdict record and sets its Listing from
// the domain's record in the listed index (nil: not listed), whatever the
// full record says: a hand delisting removes only the listed record.
func decodeVerdict(domain string, full, listed []byte) (Verdict, error) {
	var v Verdict
	if err := json.Unmarshal(full, &v); err != nil {
		return v, fmt.Errorf("verdict of %s: %w", domain, err)
	}
	v.Listing = nil
	if listed != nil {
		var l struct {
			Listing *Listing `json:"listing"`
		}
		if err := json.Unmarshal(listed, &l); err != nil {
			return v, fmt.Errorf("listed record of %s: %w", domain, err)
		}
		if l.Listing == nil {
			return v, fmt.Errorf("listed record of %s: no listing", domain)
		}
		v.Listing = l.Listing
	}
	return v, nil
}

// addresses returns every distinct answer address in the window.
func addresses(store *storage.Store, from, to time.Time) ([]netip.Addr, error) {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	err := store.Scan(from, func(_ storage.Domain, history func(func(obs.Probe) error) error) error {
		return history(func(p obs.Probe) error {
			if p.Start.After(to) {
				return nil
			}
			for _, o := range p.Observations {
				for _, r := range o.Answer {
					if r.Type != dns.TypeA && r.Type != dns.TypeAAAA {
						continue
					}
					if a, err := netip.ParseAddr(r.Data); err == nil && !seen[a] {
						seen[a] = true
						out = append(out, a)
					}
				}
			}
			return nil
		})
	})
	return out, err
}
