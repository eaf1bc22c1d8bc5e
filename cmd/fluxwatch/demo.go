package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/simnet/eval"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Demo defaults: enough rounds, far enough apart in simulated time, for
// every flux domain of the world to rotate several times.
const (
	demoRounds   = 8
	demoInterval = 3 * time.Minute // simulated
	demoSpeed    = 60
)

func demoCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [flags]",
		Short: "run the whole pipeline against the simulated world",
		Long: `Run the whole pipeline against a simulated DNS world with known truth, on
loopback: seed, crawl, classify, export. It writes the database, every verdict
with the world's truth (verdicts.jsonl), blocklist.rpz and blocklist.txt into
--out, and says how many flux domains were found.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	out := s.fs.StringP("out", "o", "fluxwatch-demo", "`directory` for the database and the files written")
	seed := s.fs.Int64("seed", 1, "world seed")
	rounds := s.fs.Int("rounds", demoRounds, "crawl rounds")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		cfg.DB = filepath.Join(*out, "fluxwatch.db")
		for _, f := range []string{cfg.DB, filepath.Join(*out, "asn.tsv"), filepath.Join(*out, "allowlist.txt")} {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("starting fresh: %w", err)
			}
		}
		log := logger(cfg, std)
		started := time.Now()

		world, err := simnet.Start(ctx, simnet.Config{Seed: *seed, Speed: demoSpeed})
		if err != nil {
			return err
		}
		defer world.Close()
		fmt.Fprintf(std.out, "demo: simulated world (seed %d) with %d domains on %d vantage resolvers, clock at %dx\n",
			*seed, len(world.Domains()), len(world.Vantages()), demoSpeed)

		// The world's ASN table and allowlist, written where users can look at them.
		if err := eval.WorldFiles(world, *out, cfg); err != nil {
			return err
		}
		cfg.ParentPort = world.ParentPort()

		store, err := storage.Open(cfg.DB)
		if err != nil {
			return err
		}
		defer store.Close()
		var names []string
		for _, d := range world.Domains() {
			names = append(names, d.Name)
		}
		if _, err := store.AddDomains(names, "simnet", world.Now()); err != nil {
			return err
		}

		// The vantages are our own loopback servers: no politeness limit needed.
		cfg.Resolvers = world.Vantages()
		cfg.QPS = 0
		cfg.Workers = 16
		cfg.Timeout = time.Second
		fmt.Fprintf(std.out, "demo: crawling %d rounds, %s apart in simulated time\n", *rounds, demoInterval)
		sum, err := crawl(ctx, cfg, store, crawlPlan{rounds: *rounds, interval: demoInterval, now: world.Now, sleep: world.Sleep}, log)
		if err != nil {
			return err
		}
		sum.print(std.out, false)
		if ctx.Err() != nil {
			return ctx.Err()
		}

		vs, err := classifyWorld(ctx, cfg, store, world)
		if err != nil {
			return err
		}
		if err := printVerdicts(std.out, vs); err != nil {
			return err
		}
		files := []struct{ format, name string }{{"jsonl", "verdicts.jsonl"}, {"rpz", "blocklist.rpz"}, {"domains", "blocklist.txt"}}
		for _, f := range files {
			// From the verdicts in hand, which carry the world's truth.
			opts := results.Options{All: f.format == "jsonl", Zone: cfg.RPZZone}
			if opts.Serial, err = store.NextSerial(time.Now()); err != nil {
				return err
			}
			if err := results.WriteFileAtomic(filepath.Join(*out, f.name), func(w io.Writer) error {
				return results.Write(w, f.format, vs, opts)
			}); err != nil {
				return err
			}
		}
		sc := score(vs)
		fmt.Fprintf(std.out, "demo: %d of %d flux domains listed, %d with the right kind; %d benign or broken domains listed\n",
			sc.found, sc.flux, sc.rightKind, sc.falseListings)
		fmt.Fprintf(std.out, "demo: wrote %s, %s, %s and %s in %.1fs\n", cfg.DB,
			filepath.Join(*out, "verdicts.jsonl"), filepath.Join(*out, "blocklist.rpz"), filepath.Join(*out, "blocklist.txt"),
			time.Since(started).Seconds())
		return nil
	}
	return cmd
}

// classifyWorld classifies on the world's clock and marks each verdict
// with the world's truth.
func classifyWorld(ctx context.Context, cfg *config.Config, store *storage.Store, world *simnet.World) ([]classify.Verdict, error) {
	c, err := newClassifier(cfg)
	if err != nil {
		return nil, err
	}
	var vs []classify.Verdict
	_, err = c.Run(ctx, store, cfg.Window, world.Now(), func(v classify.Verdict) error {
		if d, ok := world.Truth(v.Domain); ok {
			v.Truth = d.Class
		}
		vs = append(vs, v)
		return nil
	})
	return vs, err
}

type demoScore struct{ flux, found, rightKind, falseListings int }

func score(vs []classify.Verdict) demoScore {
	var s demoScore
	for _, v := range vs {
		isFlux := v.Truth == simnet.ClassSingleFlux || v.Truth == simnet.ClassDoubleFlux
		if isFlux {
			s.flux++
		}
		switch {
		case v.Listed() && isFlux:
			s.found++
			if v.Verdict == v.Truth {
				s.rightKind++
			}
		case v.Listed():
			s.falseListings++
		}
	}
	return s
}
