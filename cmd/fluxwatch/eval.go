package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Eval defaults: half an hour of simulated time, measured as the daemon
// would (each domain again just after its TTL), on a fast clock.
const (
	evalDuration = 30 * time.Minute // simulated
	evalTick     = 5 * time.Second  // simulated: how often due domains are looked for
	evalSpeed    = 120
)

func evalCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval [flags]",
		Short: "score the classifier against the simulated worlds' truth",
		Long: `Measure a simulated world (or one per seed of --seeds) for --duration of
simulated time as the daemon would, classify after every round, and score the
verdicts against the world's truth: precision and recall per class, how soon
each flux domain was found, false listings.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	seed := s.fs.Int64("seed", 1, "world seed")
	seedsFlag := s.fs.String("seeds", "", "evaluate a world per seed of this `list` (1-50, 1-5,8,1001-1050) and sum them up")
	parallel := s.fs.Int("parallel", runtime.GOMAXPROCS(0), "with --seeds: how many worlds run at once")
	asJSON := s.fs.Bool("json", false, "print the figures as one JSON object")
	duration := durationFlag(s.fs, "duration", evalDuration, "simulated time to measure for")
	verbose := s.fs.Bool("verbose", false, "also print every domain's final verdict")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if *seedsFlag != "" {
			seeds, err := parseSeeds(*seedsFlag)
			if err != nil {
				return fmt.Errorf("%w: --seeds: %v", errUsage, err)
			}
			if *parallel < 1 {
				return fmt.Errorf("%w: --parallel %d: want at least 1", errUsage, *parallel)
			}
			res, err := evalSeeds(ctx, cfg, seeds, *duration, *parallel, logger(cfg, std))
			if err != nil {
				return err
			}
			return printSeeds(std.out, res, *asJSON)
		}
		res, verdicts, err := evaluate(ctx, cfg, *seed, *duration, logger(cfg, std))
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(std.out).Encode(res)
		}
		if *verbose {
			printVerdicts(std.out, verdicts)
		}
		return res.print(std.out)
	}
	return cmd
}

// evalResult holds the figures of one evaluation. Its JSON keys are a
// contract (issue 3): seed, classes.{single-flux,double-flux,benign}.
// {precision,recall,median_delay_rounds,median_delay_seconds}, flux.
// {precision,recall}, kind_accuracy, false_listings, missed.
type evalResult struct {
	Seed          int64                     `json:"seed"`
	Classes       map[string]*classFigures  `json:"classes"`
	Flux          prFigures                 `json:"flux"`
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
}

type prFigures struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
}

type classFigures struct {
	prFigures
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
func evaluate(ctx context.Context, cfg *config.Config, seed int64, duration time.Duration, log interface {
	Info(string, ...any)
}) (*evalResult, []classify.Verdict, error) {
	dir, err := os.MkdirTemp("", "fluxwatch-eval-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	world, err := simnet.Start(ctx, simnet.Config{Seed: seed, Speed: evalSpeed})
	if err != nil {
		return nil, nil, err
	}
	defer world.Close()
	if err := worldFiles(world, dir, cfg); err != nil {
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
	c, err := newClassifier(cfg)
	if err != nil {
		return nil, nil, err
	}
	sched, _, release, err := newScheduler(cfg, store, world.Now, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	defer release()

	type progress struct {
		first   time.Time // first measurement
		correct bool
		delay   time.Duration
		rounds  int
	}
	track := map[string]*progress{}
	w := store.NewWriter(storage.WriterOptions{MaxDelay: 50 * time.Millisecond})
	start := world.Now()
	res := &evalResult{Seed: seed}
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
			final = final[:0]
			if _, err = c.Run(ctx, store, cfg.Window, now, func(v classify.Verdict) error { final = append(final, v); return nil }); err != nil {
				return nil, nil, err
			}
			for _, v := range final {
				p := track[v.Domain]
				if p == nil {
					p = &progress{first: v.Features.FirstSeen}
					track[v.Domain] = p
				}
				d, _ := world.Truth(v.Domain)
				if !p.correct && v.Verdict == truthClass(d) {
					p.correct, p.delay, p.rounds = true, v.Features.LastSeen.Sub(p.first), v.Features.Rounds
				}
			}
		}
		if err := world.Sleep(ctx, evalTick); err != nil {
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
	log.Info("eval done", "seed", seed, "rounds", res.Rounds, "domains", res.Domains)
	return res, final, nil
}

// worldFiles writes the world's ASN table and allowlist and points cfg at them.
func worldFiles(world *simnet.World, dir string, cfg *config.Config) error {
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

func (r *evalResult) score(final []classify.Verdict, world *simnet.World, delay func(string) (bool, time.Duration, int)) {
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
	r.Flux = prFigures{Precision: ratio(fluxRight, fluxListed), Recall: ratio(fluxRight, fluxTruth)}
	r.KindAccuracy = ratio(rightKind, fluxRight)
	r.Classes = map[string]*classFigures{}
	for _, class := range []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign} {
		n := 0
		for _, c := range r.Confusion[class] {
			n += c
		}
		tp := r.Confusion[class][class]
		cf := &classFigures{Count: n, prFigures: prFigures{Precision: ratio(tp, predicted[class]), Recall: ratio(tp, n)}}
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

func (r *evalResult) print(w io.Writer) error {
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
	for _, wr := range r.Wrong {
		fmt.Fprintln(w, "wrong:", wr)
	}
	return nil
}
