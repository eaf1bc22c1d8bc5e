package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/simnet/eval"
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
	duration := durationFlag(s.fs, "duration", eval.DefaultDuration, "simulated time to measure for")
	verbose := s.fs.Bool("verbose", false, "also print every domain's final verdict")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if *seedsFlag != "" {
			seeds, err := eval.ParseSeeds(*seedsFlag)
			if err != nil {
				return fmt.Errorf("%w: --seeds: %v", errUsage, err)
			}
			if *parallel < 1 {
				return fmt.Errorf("%w: --parallel %d: want at least 1", errUsage, *parallel)
			}
			res, err := eval.RunSeeds(ctx, cfg, seeds, *duration, *parallel, logger(cfg, std))
			if err != nil {
				return err
			}
			return eval.PrintSeeds(std.out, res, *asJSON)
		}
		res, verdicts, err := eval.Run(ctx, cfg, *seed, *duration, logger(cfg, std))
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(std.out).Encode(res)
		}
		if *verbose {
			printVerdicts(std.out, verdicts)
		}
		return res.Print(std.out)
	}
	return cmd
}
