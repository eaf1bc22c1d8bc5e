// Package eval scores fluxwatch against the truth of simulated worlds: it
// measures a world (package simnet) as the daemon would, classifies after
// every round, and reports precision and recall per class, how soon each
// flux domain was found, false listings, and how well the flux networks
// found match the world's (purity, adjusted Rand index, detection delay
// with and without a known network). `fluxwatch eval` prints its figures;
// their JSON keys are a contract (see Result).
package eval

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Eval defaults: half an hour of simulated time, measured as the daemon
// would (each domain again just after its TTL), on a fast clock.
const (
	DefaultDuration = 30 * time.Minute // simulated
	tick            = 5 * time.Second  // simulated: how often due domains are looked for
	speed           = 120
)

// Result holds the figures of one evaluation. Its JSON keys are a
// contract (issue 3): seed, classes.{single-flux,double-flux,benign}.
// {precision,recall,median_delay_rounds,median_delay_seconds}, flux.
// {precision,recall}, kind_accuracy, false_listings, missed.
type Result struct {
	Seed          int64                     `json:"seed"`
	Classes       map[string]*ClassFigures  `json:"classes"`
	Flux          PRFigures                 `json:"flux"`
	KindAccuracy  float64                   `json:"kind_accuracy"`
	FalseListings int                       `json:"false_listings"`
	Missed        int                       `json:"missed"`
	Confusion     map[string]map[string]int `json:"confusion"`
	Domains       int                       `json:"domains"`
	Rounds        int                       `json:"rounds"`
	SimSeconds    float64                   `json:"simulated_seconds"`
	Wrong         []string                  `json:"wrong,omitempty"`
	// Misses are the flux domains not listed, FalseListed the other
	// domains listed, each with its class and evidence.
	Misses      []string `json:"misses,omitempty"`
	FalseListed []string `json:"false_listed,omitempty"`
	// Networks scores the flux networks found against the world's.
	Networks *NetworkFigures `json:"networks"`
	// NotYetAnswered counts the newer domains of the world's networks
	// left out of every figure: no vantage had answered for them by the
	// end (they were delegated after their last measurement, or resolvers
	// still held its NXDOMAIN): there was nothing to find yet.
	NotYetAnswered int `json:"not_yet_answered,omitempty"`
}

// NetworkFigures are the flux network figures of one world (issue 17):
// purity and ari are networks.Purity and networks.AdjustedRand of the
// final networks of the flux domains against the world's (a flux domain
// with a pool of its own is a network of one on both sides). The delays
// are in rounds: how many answered rounds of its own a domain of a world's
// network had when its verdict was first right, the round that made it
// count; known for domains whose network had another domain listed
// before their first answered round (association could apply), unknown
// for the others.
type NetworkFigures struct {
	Purity                   float64 `json:"purity"`
	ARI                      float64 `json:"ari"`
	MedianDelayRoundsKnown   float64 `json:"median_delay_rounds_known"`
	MedianDelayRoundsUnknown float64 `json:"median_delay_rounds_unknown"`
	// Known and Unknown count the domains of each median.
	Known   int `json:"known_domains"`
	Unknown int `json:"unknown_domains"`
	// Found is how many networks the classifier stored at the end, Flux
	// how many flux domains the scores are of.
	Found int `json:"networks_found"`
	Flux  int `json:"flux_domains"`
	// AssociationListings counts the domains association made flux and
	// listed in any round; FalseByAssociation those of them whose truth is
	// not flux (the issue asks for none).
	AssociationListings int `json:"association_listings"`
	FalseByAssociation  int `json:"false_listings_by_association"`
	// Overlap is the measured distribution the linking threshold is read
	// from: over the final flux verdicts' agents (before the safeguards).
	Overlap OverlapFigures `json:"overlap"`
	// Association is the measured distribution the association rule is
	// read from.
	Association AssociationFigures `json:"association"`
}

// AssociationFigures: how many of its addresses a known network's domain
// had among the network's agents on its first answered round (the share,
// and the count), against what names that are not flux reached with all
// their addresses of the window and the final networks.
type AssociationFigures struct {
	NewDomains     int     `json:"new_domains"`
	NewShareMin    float64 `json:"new_share_min"`
	NewShareP05    float64 `json:"new_share_p05"`
	NewShareMedian float64 `json:"new_share_median"`
	NewSeenMin     int     `json:"new_seen_min"`
	NewSeenMedian  float64 `json:"new_seen_median"`
	Others         int     `json:"other_domains"`
	OtherSeenMax   int     `json:"other_seen_max"`
	OtherShareMax  float64 `json:"other_share_max"`
}

// OverlapFigures: for each flux domain of a world's network, its best
// overlap coefficient (and Jaccard index) with another domain of the same
// network, which is what single linkage needs; and the overlap of every
// pair of flux domains of different networks (but a domain that moved and
// the network it left). Quantiles are nearest rank.
type OverlapFigures struct {
	SameBestMin      float64 `json:"same_best_min"`
	SameBestP05      float64 `json:"same_best_p05"`
	SameBestMedian   float64 `json:"same_best_median"`
	SameBestJaccMin  float64 `json:"same_best_jaccard_min"`
	SameBestShareMin int     `json:"same_best_shared_min"`
	DifferentMax     float64 `json:"different_max"`
	DifferentP99     float64 `json:"different_p99"`
	DifferentShared  int     `json:"different_shared_max"`
	SamePairs        int     `json:"same_domains"`
	DifferentPairs   int     `json:"different_pairs"`
}

type PRFigures struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
}

type ClassFigures struct {
	PRFigures
	Count              int     `json:"count"`
	MedianDelayRounds  float64 `json:"median_delay_rounds"`
	MedianDelaySeconds float64 `json:"median_delay_seconds"`
	// MedianDelayTTLs is the delay in TTL periods of each domain.
	MedianDelayTTLs float64 `json:"median_delay_ttls"`
	detected        int     // domains whose delay the medians are of
}

// truthClass maps the world's classes to the verdict a perfect classifier
// gives; broken domains should be unresolvable.
func truthClass(d simnet.Domain) string {
	if d.Class == simnet.ClassBroken {
		return classify.Unresolvable
	}
	return d.Class
}

// evaluate measures a fresh world with its truth known and scores the
// classifier: after every round each domain is classified, so the delay to
// the first correct verdict is known in rounds and simulated seconds.
func Run(ctx context.Context, cfg *config.Config, seed int64, duration time.Duration, log interface {
	Info(string, ...any)
}) (*Result, []classify.Verdict, error) {
	dir, err := os.MkdirTemp("", "fluxwatch-eval-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	// The eval's worlds hold flux networks and the names that share
	// addresses with them (issue 17).
	world, err := simnet.Start(ctx, simnet.Config{Seed: seed, Speed: speed}.WithNetworks())
	if err != nil {
		return nil, nil, err
	}
	defer world.Close()
	if err := WorldFiles(world, dir, cfg); err != nil {
		return nil, nil, err
	}
	cfg.DB = filepath.Join(dir, "eval.db")
	cfg.Resolvers, cfg.ResolversFile = world.Vantages(), ""
	cfg.QPS, cfg.Workers, cfg.Timeout = 0, 16, time.Second
	cfg.MinInterval, cfg.MaxInterval = 10*time.Second, 10*time.Minute
	cfg.ParentPort = world.ParentPort()
	store, err := storage.Open(cfg.DB)
	if err != nil {
		return nil, nil, err
	}
	defer store.Close()
	domains := world.Domains()
	var names []string
	for _, d := range domains {
		names = append(names, d.Name)
	}
	if _, err := store.AddDomains(names, "simnet", world.Now()); err != nil {
		return nil, nil, err
	}
	c, err := classify.FromConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	sched, _, release, err := scheduler.FromConfig(cfg, store, world.Now, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	defer release()

	type progress struct {
		first   time.Time // first measurement
		correct bool
		delay   time.Duration
		rounds  int
		// The round it was first answered in and first listed in (-1: not
		// yet), and whether association made it flux and listed it.
		answered, listed int
		associated       bool
		firstMatch       networks.Match
		addresses        int // of firstMatch
	}
	track := map[string]*progress{}
	w := store.NewWriter(storage.WriterOptions{MaxDelay: 50 * time.Millisecond})
	start := world.Now()
	res := &Result{Seed: seed}
	var final []classify.Verdict
	for world.Now().Sub(start) < duration && ctx.Err() == nil {
		due, err := store.Due(world.Now())
		if err != nil {
			return nil, nil, err
		}
		if len(due) > 0 {
			if _, err := sched.Round(ctx, due, w); err != nil {
				return nil, nil, err
			}
			res.Rounds++
			if err := w.Flush(); err != nil {
				return nil, nil, err
			}
			now := world.Now()
			// The networks the run starts from: what association knows.
			before, err := networks.List(store)
			if err != nil {
				return nil, nil, err
			}
			known := networks.NewIndex(before)
			final = final[:0]
			if _, err = c.Run(ctx, store, cfg.Window, now, func(v classify.Verdict) error { final = append(final, v); return nil }); err != nil {
				return nil, nil, err
			}
			for _, v := range final {
				p := track[v.Domain]
				if p == nil {
					p = &progress{first: v.Features.FirstSeen, answered: -1, listed: -1}
					track[v.Domain] = p
				}
				d, _ := world.Truth(v.Domain)
				if !p.correct && v.Verdict == truthClass(d) {
					p.correct, p.delay, p.rounds = true, v.Features.LastSeen.Sub(p.first), v.Features.Rounds
				}
				if p.answered < 0 && v.Features.Rounds > 0 {
					p.answered = res.Rounds
					if d.Network != "" {
						// What association saw of a network's domain on its first round.
						if p.firstMatch, p.addresses, err = matchHistory(store, known, v.Domain, now.Add(-cfg.Window), now); err != nil {
							return nil, nil, err
						}
					}
				}
				if p.listed < 0 && v.Listed() {
					p.listed = res.Rounds
				}
				p.associated = p.associated || v.Listed() && v.NetworkAgentsSeen > 0
			}
		}
		if err := world.Sleep(ctx, tick); err != nil {
			break
		}
	}
	w.Close()
	res.SimSeconds = world.Now().Sub(start).Seconds()
	for i := range final {
		if d, ok := world.Truth(final[i].Domain); ok {
			final[i].Truth = d.Class
		}
	}
	res.score(final, world, func(name string) (bool, time.Duration, int) {
		p := track[name]
		if p == nil {
			return false, 0, 0
		}
		return p.correct, p.delay, p.rounds
	})
	nets, err := networks.List(store)
	if err != nil {
		return nil, nil, err
	}
	res.Networks = scoreNetworks(final, world, nets, func(name string) networkProgress {
		p := track[name]
		if p == nil {
			return networkProgress{answered: -1, listed: -1}
		}
		return networkProgress{correct: p.correct, rounds: p.rounds, answered: p.answered, listed: p.listed, associated: p.associated,
			firstMatch: p.firstMatch, addresses: p.addresses}
	})
	// How close the names that are not flux came to association: their
	// addresses over the window against the final networks.
	atEnd := networks.NewIndex(nets)
	a := &res.Networks.Association
	for _, v := range final {
		d, _ := world.Truth(v.Domain)
		if classify.IsFlux(truthClass(d)) || v.Features.Addresses == 0 {
			continue
		}
		m, n, err := matchHistory(store, atEnd, v.Domain, world.Now().Add(-cfg.Window), world.Now())
		if err != nil {
			return nil, nil, err
		}
		a.Others++
		a.OtherSeenMax = max(a.OtherSeenMax, m.Seen)
		if n > 0 {
			a.OtherShareMax = max(a.OtherShareMax, round3(float64(m.Seen)/float64(n)))
		}
	}
	log.Info("eval done", "seed", seed, "rounds", res.Rounds, "domains", res.Domains)
	return res, final, nil
}

// networkProgress is what evaluate tracked of one domain for the network
// figures.
type networkProgress struct {
	correct          bool
	rounds           int // own answered rounds at the first right verdict
	answered, listed int // rounds first answered and first listed in (-1: never)
	associated       bool
	// firstMatch is the known network its first answered round matched,
	// of how many addresses.
	firstMatch networks.Match
	addresses  int
}

// matchHistory matches the A and AAAA addresses domain was given in
// [from, to] with the known networks, as association does.
func matchHistory(store *storage.Store, known *networks.Index, domain string, from, to time.Time) (networks.Match, int, error) {
	set := map[netip.Addr]bool{}
	err := store.History(domain, from, to.Add(time.Nanosecond), func(p obs.Probe) error {
		for _, o := range p.Observations {
			if o.Name != domain || o.Flags&obs.FlagDelegation != 0 {
				continue
			}
			for _, r := range o.Answer {
				if r.Type == dns.TypeA || r.Type == dns.TypeAAAA {
					if a, err := netip.ParseAddr(r.Data); err == nil {
						set[a] = true
					}
				}
			}
		}
		return nil
	})
	addrs := slices.SortedFunc(maps.Keys(set), netip.Addr.Compare)
	return known.Match(domain, addrs), len(addrs), err
}

// scoreNetworks computes a world's network figures from the final
// verdicts, the stored networks and each domain's progress.
func scoreNetworks(final []classify.Verdict, world *simnet.World, nets []networks.Network, progress func(string) networkProgress) *NetworkFigures {
	nf := &NetworkFigures{Found: len(nets)}
	found := map[string]string{}
	for _, n := range nets {
		for _, d := range n.Domains {
			found[d] = n.ID
		}
	}
	// The network a domain was in when it first answered: a domain that
	// moved was in the one it left.
	startNetwork := func(d simnet.Domain) string { return cmp.Or(d.PreviousNetwork, d.Network) }
	firstListed := map[string]int{} // world network → first round one of its domains was listed in
	var pred, truth []string
	type fluxSet struct {
		network, previous string
		agents            []netip.Addr
	}
	var sets []fluxSet
	end := world.Now()
	for _, v := range final {
		d, _ := world.Truth(v.Domain)
		if notYetAnswered(d, v) {
			continue
		}
		d.Network = networkAt(d, end)
		p := progress(v.Domain)
		if p.associated {
			nf.AssociationListings++
			if d.Class != simnet.ClassSingleFlux && d.Class != simnet.ClassDoubleFlux {
				nf.FalseByAssociation++
			}
		}
		if d.Network != "" && p.listed >= 0 {
			if r, ok := firstListed[startNetwork(d)]; !ok || p.listed < r {
				firstListed[startNetwork(d)] = p.listed
			}
		}
		if !classify.IsFlux(truthClass(d)) || !classify.IsFlux(v.Verdict) {
			continue
		}
		pred = append(pred, cmp.Or(found[v.Domain], "alone:"+v.Domain))
		truth = append(truth, cmp.Or(d.Network, "alone:"+v.Domain))
		var agents []netip.Addr
		for _, s := range slices.Concat(v.Agents, v.NSAgents) {
			if a, err := netip.ParseAddr(s); err == nil {
				agents = append(agents, a)
			}
		}
		slices.SortFunc(agents, netip.Addr.Compare)
		sets = append(sets, fluxSet{network: d.Network, previous: d.PreviousNetwork, agents: slices.Compact(agents)})
	}
	nf.Flux = len(pred)
	nf.Purity, nf.ARI = round3(networks.Purity(pred, truth)), round3(networks.AdjustedRand(pred, truth))
	var known, unknown []float64
	for _, v := range final {
		d, _ := world.Truth(v.Domain)
		p := progress(v.Domain)
		if d.Network == "" || !p.correct || p.answered < 0 {
			continue
		}
		if r, ok := firstListed[startNetwork(d)]; ok && r < p.answered {
			known = append(known, float64(p.rounds))
		} else {
			unknown = append(unknown, float64(p.rounds))
		}
	}
	nf.Known, nf.Unknown = len(known), len(unknown)
	var shares, seen []float64
	for _, v := range final {
		d, _ := world.Truth(v.Domain)
		p := progress(v.Domain)
		if d.Network == "" || p.answered < 0 || p.addresses == 0 {
			continue
		}
		if r, ok := firstListed[startNetwork(d)]; !ok || r >= p.answered {
			continue // no network known yet
		}
		shares = append(shares, float64(p.firstMatch.Seen)/float64(p.addresses))
		seen = append(seen, float64(p.firstMatch.Seen))
	}
	if a := &nf.Association; len(shares) > 0 {
		a.NewDomains = len(shares)
		a.NewShareMin, a.NewShareP05, a.NewShareMedian = round3(slices.Min(shares)), round3(quantile(shares, 0.05)), round3(median(shares))
		a.NewSeenMin, a.NewSeenMedian = int(slices.Min(seen)), median(seen)
	}
	nf.MedianDelayRoundsKnown, nf.MedianDelayRoundsUnknown = median(known), median(unknown)
	// The distributions behind the linking threshold.
	var sameBest, sameJacc, different []float64
	sameShared, diffShared := -1, 0
	for i, a := range sets {
		best, bestJ, bestShared := -1.0, 0.0, 0
		for j, b := range sets {
			if i == j {
				continue
			}
			o, shared := networks.Overlap(a.agents, b.agents)
			if a.network != "" && a.network == b.network {
				if o > best {
					best, bestJ, bestShared = o, networks.Jaccard(a.agents, b.agents), shared
				}
			} else if j > i && (a.previous == "" || a.previous != b.network) && (b.previous == "" || b.previous != a.network) {
				// (A domain that moved shares its window with the network it left.)
				different = append(different, o)
				diffShared = max(diffShared, shared)
			}
		}
		if best >= 0 {
			sameBest, sameJacc = append(sameBest, best), append(sameJacc, bestJ)
			if sameShared < 0 || bestShared < sameShared {
				sameShared = bestShared
			}
		}
	}
	o := &nf.Overlap
	o.SamePairs, o.DifferentPairs = len(sameBest), len(different)
	if len(sameBest) > 0 {
		o.SameBestMin, o.SameBestP05, o.SameBestMedian = round3(slices.Min(sameBest)), round3(quantile(sameBest, 0.05)), round3(median(sameBest))
		o.SameBestJaccMin, o.SameBestShareMin = round3(slices.Min(sameJacc)), sameShared
	}
	if len(different) > 0 {
		o.DifferentMax, o.DifferentP99, o.DifferentShared = round3(slices.Max(different)), round3(quantile(different, 0.99)), diffShared
	}
	return nf
}

// quantile is the nearest-rank q-quantile of xs.
func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// WorldFiles writes the world's ASN table and allowlist and points cfg at them.
func WorldFiles(world *simnet.World, dir string, cfg *config.Config) error {
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
		set   func(string)
	}{
		{"asn.tsv", world.WriteASNTable, func(p string) { cfg.ASNDB = []string{p} }},
		{"allowlist.txt", world.WriteAllowlist, func(p string) { cfg.Allowlist = []string{p} }},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			return err
		}
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return err
		}
		f.set(p)
	}
	return nil
}

func (r *Result) score(final []classify.Verdict, world *simnet.World, delay func(string) (bool, time.Duration, int)) {
	r.Domains = len(final)
	r.Confusion = map[string]map[string]int{}
	predicted := map[string]int{}
	type delays struct {
		rounds, seconds, ttls []float64
	}
	perClass := map[string]*delays{}
	var fluxTruth, fluxListed, fluxRight, rightKind int
	for _, v := range final {
		d, _ := world.Truth(v.Domain)
		if notYetAnswered(d, v) {
			r.NotYetAnswered++
			continue
		}
		truth := truthClass(d)
		if r.Confusion[truth] == nil {
			r.Confusion[truth] = map[string]int{}
		}
		r.Confusion[truth][v.Verdict]++
		predicted[v.Verdict]++
		line := fmt.Sprintf("%s (%s %s) → %s: %s", v.Domain, d.Class, d.Kind, v.Verdict, v.Evidence)
		if v.Verdict != truth {
			r.Wrong = append(r.Wrong, line)
		}
		isFlux := truth == classify.SingleFlux || truth == classify.DoubleFlux
		listed := v.Listed()
		switch {
		case isFlux:
			fluxTruth++
			if listed {
				fluxRight++
				if v.Verdict == truth {
					rightKind++
				}
			} else {
				r.Missed++
				r.Misses = append(r.Misses, line)
			}
		case listed:
			r.FalseListings++
			r.FalseListed = append(r.FalseListed, line)
		}
		if listed {
			fluxListed++
		}
		if ok, dl, rounds := delay(v.Domain); ok && v.Verdict == truth {
			pc := perClass[truth]
			if pc == nil {
				pc = &delays{}
				perClass[truth] = pc
			}
			pc.rounds = append(pc.rounds, float64(max(rounds-1, 0)))
			pc.seconds = append(pc.seconds, dl.Seconds())
			if d.TTL > 0 {
				pc.ttls = append(pc.ttls, dl.Seconds()/float64(d.TTL))
			}
		}
	}
	r.Flux = PRFigures{Precision: ratio(fluxRight, fluxListed), Recall: ratio(fluxRight, fluxTruth)}
	r.KindAccuracy = ratio(rightKind, fluxRight)
	r.Classes = map[string]*ClassFigures{}
	for _, class := range []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign} {
		n := 0
		for _, c := range r.Confusion[class] {
			n += c
		}
		tp := r.Confusion[class][class]
		cf := &ClassFigures{Count: n, PRFigures: PRFigures{Precision: ratio(tp, predicted[class]), Recall: ratio(tp, n)}}
		if pc := perClass[class]; pc != nil {
			cf.MedianDelayRounds, cf.MedianDelaySeconds, cf.MedianDelayTTLs = median(pc.rounds), round3(median(pc.seconds)), round3(median(pc.ttls))
			cf.detected = len(pc.seconds)
		}
		r.Classes[class] = cf
	}
	sort.Strings(r.Wrong)
	sort.Strings(r.Misses)
	sort.Strings(r.FalseListed)
}

// notYetAnswered reports whether v is of a newer domain of a world's
// network that no vantage has answered for (see Result.NotYetAnswered).
func notYetAnswered(d simnet.Domain, v classify.Verdict) bool {
	return !d.Starts.IsZero() && v.Features.Rounds == 0
}

// networkAt returns the network d is in at t: a domain that moves later
// is still in the one it leaves.
func networkAt(d simnet.Domain, t time.Time) string {
	if d.PreviousNetwork != "" && t.Before(d.MovesAt) {
		return d.PreviousNetwork
	}
	return d.Network
}

// ratio is a/b, or 1 when b is 0 (nothing to get wrong).
func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return round3(float64(a) / float64(b))
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *Result) Print(w io.Writer) error {
	fmt.Fprintf(w, "eval: seed %d, %d domains, %d rounds over %.0f simulated seconds\n\n", r.Seed, r.Domains, r.Rounds, r.SimSeconds)
	verdicts := []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign, classify.InsufficientData, classify.Unresolvable}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "truth \\ verdict\t")
	for _, v := range verdicts {
		fmt.Fprintf(tw, "%s\t", v)
	}
	fmt.Fprintln(tw)
	for _, truth := range verdicts {
		row, ok := r.Confusion[truth]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t", truth)
		for _, v := range verdicts {
			fmt.Fprintf(tw, "%d\t", row[v])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "class\tdomains\tprecision\trecall\tmedian delay (rounds)\t(simulated s)\t(TTLs)")
	for _, class := range []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign} {
		c := r.Classes[class]
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.1f\t%.0f\t%.2f\n", class, c.Count, c.Precision, c.Recall, c.MedianDelayRounds, c.MedianDelaySeconds, c.MedianDelayTTLs)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nflux: precision %.3f, recall %.3f; kind accuracy %.3f; %d false listings, %d missed\n",
		r.Flux.Precision, r.Flux.Recall, r.KindAccuracy, r.FalseListings, r.Missed)
	if n := r.Networks; n != nil {
		fmt.Fprintf(w, "networks: %d found for %d flux domains, purity %.3f, adjusted Rand index %.3f; median rounds to detection %.1f with a known network (%d domains), %.1f without (%d); %d listed by association, %d of them falsely\n",
			n.Found, n.Flux, n.Purity, n.ARI, n.MedianDelayRoundsKnown, n.Known, n.MedianDelayRoundsUnknown, n.Unknown, n.AssociationListings, n.FalseByAssociation)
		fmt.Fprintf(w, "agent overlap: same network, each domain's best %.3f min / %.3f p5 / %.3f median (Jaccard min %.3f, %d shared min); different networks %.3f max / %.3f p99 (%d shared max)\n",
			n.Overlap.SameBestMin, n.Overlap.SameBestP05, n.Overlap.SameBestMedian, n.Overlap.SameBestJaccMin, n.Overlap.SameBestShareMin,
			n.Overlap.DifferentMax, n.Overlap.DifferentP99, n.Overlap.DifferentShared)
	}
	for _, wr := range r.Wrong {
		fmt.Fprintln(w, "wrong:", wr)
	}
	return nil
}
