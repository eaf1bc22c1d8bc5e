package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
)

// Detection judged on many worlds: eval --seeds runs one world per seed,
// several at once, and sums them up per class as the worst, median and
// mean of each world's figures, with every miss and false listing.

// maxSeeds bounds a seed list: each seed is a world measured for minutes.
const maxSeeds = 10000

// ParseSeeds parses a list of seeds and seed ranges separated by commas,
// such as "1-50" or "1-5,8,1001-1050", into distinct seeds in order.
func ParseSeeds(s string) ([]int64, error) {
	var out []int64
	seen := map[int64]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		from, err := strconv.ParseInt(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("seed %q: not a number", part)
		}
		to := from
		if isRange {
			if to, err = strconv.ParseInt(hi, 10, 64); err != nil {
				return nil, fmt.Errorf("seed range %q: %q is not a number", part, hi)
			}
			if to < from {
				return nil, fmt.Errorf("seed range %q: ends before it starts", part)
			}
		}
		if to-from >= maxSeeds {
			return nil, fmt.Errorf("seed range %q: more than %d seeds", part, maxSeeds)
		}
		for seed := from; seed <= to; seed++ {
			if !seen[seed] {
				seen[seed] = true
				out = append(out, seed)
			}
		}
		if len(out) > maxSeeds {
			return nil, fmt.Errorf("seeds %q: more than %d", s, maxSeeds)
		}
	}
	return out, nil
}

// stat sums one figure up over the worlds: the worst world's (the lowest
// precision or recall, the longest delay), the median and the mean.
type stat struct {
	Worst  float64 `json:"worst"`
	Median float64 `json:"median"`
	Mean   float64 `json:"mean"`
	// Worlds is how many worlds had the figure (a delay needs a detection).
	Worlds int `json:"worlds"`
}

// summarize returns the stat of xs; higherIsWorse says which end is worst.
func summarize(xs []float64, higherIsWorse bool) stat {
	if len(xs) == 0 {
		return stat{}
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	worst := slices.Min(xs)
	if higherIsWorse {
		worst = slices.Max(xs)
	}
	return stat{Worst: worst, Median: round3(median(xs)), Mean: round3(sum / float64(len(xs))), Worlds: len(xs)}
}

// seedsClass are one class's figures over the worlds.
type seedsClass struct {
	Domains   int  `json:"domains"` // of the class, in all worlds
	Precision stat `json:"precision"`
	Recall    stat `json:"recall"`
	// Each world's median delay to the first correct verdict.
	DelayRounds  stat `json:"delay_rounds"`
	DelaySeconds stat `json:"delay_seconds"`
	DelayTTLs    stat `json:"delay_ttls"`
}

// seedLine is a line of one world's result: a miss or a false listing.
type seedLine struct {
	Seed int64  `json:"seed"`
	Line string `json:"line"`
}

// SeedsResult holds the figures of eval --seeds. Its JSON keys are
// documented in the README.
type SeedsResult struct {
	Seeds   []int64                `json:"seeds"`
	Worlds  int                    `json:"worlds"`
	Classes map[string]*seedsClass `json:"classes"`
	Flux    struct {
		Precision stat `json:"precision"`
		Recall    stat `json:"recall"`
	} `json:"flux"`
	KindAccuracy stat `json:"kind_accuracy"`
	// FalseListings and Missed are totals over the worlds; FalseListed and
	// Misses say which domains, with their evidence.
	FalseListings int        `json:"false_listings"`
	Missed        int        `json:"missed"`
	FalseListed   []seedLine `json:"false_listed"`
	Misses        []seedLine `json:"misses"`
	// Networks sums up the worlds' network figures: each figure's worst,
	// median and mean over the worlds (a delay's worst is its longest).
	Networks   seedsNetworks `json:"networks"`
	Results    []*Result     `json:"results"`
	Elapsed    float64       `json:"elapsed_seconds"`
	Parallel   int           `json:"parallel"`
	classOrder []string      // classes in print order
}

// seedsNetworks are the network figures over the worlds, with the
// extremes of the measured overlap distributions: the least overlap of a
// domain with its best-linked sibling, and the most between domains of
// different networks, in any world.
type seedsNetworks struct {
	Purity                   stat    `json:"purity"`
	ARI                      stat    `json:"ari"`
	MedianDelayRoundsKnown   stat    `json:"median_delay_rounds_known"`
	MedianDelayRoundsUnknown stat    `json:"median_delay_rounds_unknown"`
	AssociationListings      int     `json:"association_listings"`
	FalseByAssociation       int     `json:"false_listings_by_association"`
	SameBestMin              float64 `json:"same_best_min"`
	SameBestJaccardMin       float64 `json:"same_best_jaccard_min"`
	SameBestSharedMin        int     `json:"same_best_shared_min"`
	DifferentMax             float64 `json:"different_max"`
	DifferentSharedMax       int     `json:"different_shared_max"`
}

// evalSeeds evaluates a world per seed, at most parallel at once, and
// sums them up. The first error stops the worlds not yet started.
func RunSeeds(ctx context.Context, cfg *config.Config, seeds []int64, duration time.Duration, parallel int, log interface {
	Info(string, ...any)
}) (*SeedsResult, error) {
	started := time.Now()
	parallel = max(1, min(parallel, len(seeds)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]*Result, len(seeds))
	errs := make([]error, len(seeds))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, seed := range seeds {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c := *cfg // each world points its copy at its own files
			res, _, err := Run(ctx, &c, seed, duration, log)
			if err != nil {
				errs[i] = fmt.Errorf("eval seed %d: %w", seed, err)
				cancel()
				return
			}
			results[i] = res
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := sumUp(seeds, results)
	r.Elapsed, r.Parallel = round3(time.Since(started).Seconds()), parallel
	return r, nil
}

// sumUp sums the worlds' results up.
func sumUp(seeds []int64, results []*Result) *SeedsResult {
	r := &SeedsResult{Seeds: seeds, Worlds: len(results), Results: results, Classes: map[string]*seedsClass{},
		FalseListed: []seedLine{}, Misses: []seedLine{},
		classOrder: []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign}}
	var fluxP, fluxR, kind []float64
	for _, class := range r.classOrder {
		var p, rc, dr, ds, dt []float64
		sc := &seedsClass{}
		for _, res := range results {
			c := res.Classes[class]
			if c == nil || c.Count == 0 {
				continue
			}
			sc.Domains += c.Count
			p, rc = append(p, c.Precision), append(rc, c.Recall)
			if c.detected > 0 {
				dr, ds, dt = append(dr, c.MedianDelayRounds), append(ds, c.MedianDelaySeconds), append(dt, c.MedianDelayTTLs)
			}
		}
		sc.Precision, sc.Recall = summarize(p, false), summarize(rc, false)
		sc.DelayRounds, sc.DelaySeconds, sc.DelayTTLs = summarize(dr, true), summarize(ds, true), summarize(dt, true)
		r.Classes[class] = sc
	}
	for i, res := range results {
		fluxP, fluxR, kind = append(fluxP, res.Flux.Precision), append(fluxR, res.Flux.Recall), append(kind, res.KindAccuracy)
		r.FalseListings += res.FalseListings
		r.Missed += res.Missed
		for _, l := range res.FalseListed {
			r.FalseListed = append(r.FalseListed, seedLine{seeds[i], l})
		}
		for _, l := range res.Misses {
			r.Misses = append(r.Misses, seedLine{seeds[i], l})
		}
	}
	r.Flux.Precision, r.Flux.Recall, r.KindAccuracy = summarize(fluxP, false), summarize(fluxR, false), summarize(kind, false)
	var purity, ari, known, unknown []float64
	n := &r.Networks
	first := true
	for _, res := range results {
		nf := res.Networks
		if nf == nil {
			continue
		}
		purity, ari = append(purity, nf.Purity), append(ari, nf.ARI)
		if nf.Known > 0 {
			known = append(known, nf.MedianDelayRoundsKnown)
		}
		if nf.Unknown > 0 {
			unknown = append(unknown, nf.MedianDelayRoundsUnknown)
		}
		n.AssociationListings += nf.AssociationListings
		n.FalseByAssociation += nf.FalseByAssociation
		o := nf.Overlap
		if o.SamePairs > 0 && (first || o.SameBestMin < n.SameBestMin) {
			n.SameBestMin, n.SameBestSharedMin = o.SameBestMin, o.SameBestShareMin
		}
		if o.SamePairs > 0 && (first || o.SameBestJaccMin < n.SameBestJaccardMin) {
			n.SameBestJaccardMin = o.SameBestJaccMin
		}
		if o.SamePairs > 0 {
			first = false
		}
		n.DifferentMax, n.DifferentSharedMax = max(n.DifferentMax, o.DifferentMax), max(n.DifferentSharedMax, o.DifferentShared)
	}
	n.Purity, n.ARI = summarize(purity, false), summarize(ari, false)
	n.MedianDelayRoundsKnown, n.MedianDelayRoundsUnknown = summarize(known, true), summarize(unknown, true)
	return r
}

// seedList writes seeds compactly: runs of consecutive seeds as ranges.
func seedList(seeds []int64) string {
	var parts []string
	for i := 0; i < len(seeds); {
		j := i
		for j+1 < len(seeds) && seeds[j+1] == seeds[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", seeds[i], seeds[j]))
		} else {
			parts = append(parts, strconv.FormatInt(seeds[i], 10))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func (r *SeedsResult) print(w io.Writer) error {
	domains := 0
	for _, res := range r.Results {
		domains += res.Domains
	}
	fmt.Fprintf(w, "eval: seeds %s, %d worlds (%d at once), %d domains in all, %.0fs\n\n", seedList(r.Seeds), r.Worlds, r.Parallel, domains, r.Elapsed)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "class\tdomains\tprecision worst/median/mean\trecall worst/median/mean\tdelay s worst/median/mean\tdelay TTLs worst/median/mean")
	three := func(s stat, format string) string {
		if s.Worlds == 0 {
			return "-"
		}
		return fmt.Sprintf(format+" / "+format+" / "+format, s.Worst, s.Median, s.Mean)
	}
	for _, class := range r.classOrder {
		c := r.Classes[class]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", class, c.Domains, three(c.Precision, "%.3f"), three(c.Recall, "%.3f"),
			three(c.DelaySeconds, "%.0f"), three(c.DelayTTLs, "%.2f"))
	}
	fmt.Fprintf(tw, "flux\t\t%s\t%s\t\t\n", three(r.Flux.Precision, "%.3f"), three(r.Flux.Recall, "%.3f"))
	tw.Flush()
	fmt.Fprintf(w, "\nkind accuracy worst/median/mean %s; %d false listings, %d missed\n",
		three(r.KindAccuracy, "%.3f"), r.FalseListings, r.Missed)
	n := r.Networks
	fmt.Fprintf(w, "networks: purity %s, adjusted Rand index %s (worst/median/mean); median rounds to detection with a known network %s, without %s; %d listed by association, %d of them falsely\n",
		three(n.Purity, "%.3f"), three(n.ARI, "%.3f"), three(n.MedianDelayRoundsKnown, "%.1f"), three(n.MedianDelayRoundsUnknown, "%.1f"),
		n.AssociationListings, n.FalseByAssociation)
	fmt.Fprintf(w, "agent overlap: a domain with its best-linked sibling at least %.3f (Jaccard %.3f, %d shared); domains of different networks at most %.3f (%d shared)\n",
		n.SameBestMin, n.SameBestJaccardMin, n.SameBestSharedMin, n.DifferentMax, n.DifferentSharedMax)
	for _, l := range r.Misses {
		fmt.Fprintf(w, "miss: seed %d: %s\n", l.Seed, l.Line)
	}
	for _, l := range r.FalseListed {
		fmt.Fprintf(w, "false listing: seed %d: %s\n", l.Seed, l.Line)
	}
	return nil
}

// printSeeds prints r as text or, with asJSON, as one JSON object.
func PrintSeeds(w io.Writer, r *SeedsResult, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	return r.print(w)
}
