package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/storage"
)

func crawlCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crawl [flags]",
		Short: "measure every domain through every vantage",
		Long: `Measure every active domain through every vantage resolver, for --rounds
rounds --interval apart (--due: only the domains whose next measurement is
due), and store every answer. Ctrl-C stops handing out work, lets the queries
in flight finish and stores them. The closing line counts the queries sent,
answered and failed by class; --json prints it as one JSON object.

Exit status: 0 when queries were answered, also when others failed (the
closing line counts them by class), when there was nothing to measure and when
interrupted; 1 when queries were sent and not one got a response: the
resolvers cannot be reached.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	s.crawlFlags()
	rounds := s.fs.Int("rounds", 1, "number of rounds")
	interval := durationFlag(s.fs, "interval", 5*time.Minute, "time from the start of one round to the start of the next")
	due := s.fs.Bool("due", false, "measure only the domains whose next-due time has come")
	asJSON := s.fs.Bool("json", false, "print the summary as one JSON object")
	quiet := s.fs.BoolP("quiet", "q", false, "no progress bar (there is none when standard error is not a terminal)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if *rounds < 1 {
			return fmt.Errorf("%w: --rounds must be at least 1", errUsage)
		}
		store, err := ownStore(ctx, cfg, "crawl")
		if err != nil {
			return err
		}
		defer store.Close()
		log := logger(cfg, std)
		// Other commands run through the crawl while it holds the database;
		// a classification waits until it ends.
		defer hold("crawl", cfg, store, time.Now, log, func(job string) (func(), error) {
			if job == "classify" {
				return nil, fmt.Errorf("a crawl (pid %d) holds the database %s: classify when it ends, or classify --dry-run now", os.Getpid(), cfg.DB)
			}
			return func() {}, nil
		}, nil, nil)()
		procs := useProcs(cfg.Procs)
		gogc := useMeasureGC()
		bar := newProgress(std, *quiet, "crawl", -1, false)
		sum, err := crawl(ctx, cfg, store, crawlPlan{rounds: *rounds, interval: *interval, dueOnly: *due, bar: bar, procs: procs, gogc: gogc}, log)
		bar.finish()
		if err != nil {
			return err
		}
		if err := sum.print(std.out, *asJSON); err != nil {
			return err
		}
		if sum.QueriesSent > 0 && sum.Answered == 0 && !sum.Interrupted {
			return fmt.Errorf("not one of the %d queries sent got a response: check that the vantage resolvers can be reached from here",
				sum.QueriesSent)
		}
		return nil
	}
	return cmd
}

// crawlPlan is what one crawl does; now and sleep replace the real clock
// (the demo runs on the simulated world's).
type crawlPlan struct {
	rounds   int
	interval time.Duration
	dueOnly  bool
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	bar      *progress // nil: none
	procs    int       // GOMAXPROCS in force, for the log
	gogc     string    // GOGC in force, for the log
}

// crawl runs the rounds and commits everything measured, also when ctx is
// cancelled (SIGINT/SIGTERM) part-way.
func crawl(ctx context.Context, cfg *config.Config, store *storage.Store, plan crawlPlan, log *slog.Logger) (crawlSummary, error) {
	now := plan.now
	if now == nil {
		now = time.Now
	}
	sched, vantages, release, err := newScheduler(cfg, store, now, log, nil)
	if err != nil {
		return crawlSummary{}, err
	}
	defer release()
	log.Info("crawl starting", "rounds", plan.rounds, "vantages", len(vantages), "qps_per_vantage", cfg.QPS, "procs", plan.procs, "gogc", plan.gogc)
	bar := plan.bar
	if bar == nil {
		bar = &progress{}
	}
	// The bar counts committed probes: updated once per transaction, never
	// on the query path.
	w := store.NewWriter(storage.WriterOptions{OnCommit: func(p, o int64) {
		log.Debug("committed", "probes", p, "observations", o)
		bar.set(p)
	}})
	var planned int64
	start := time.Now()
	st, runErr := sched.Run(ctx, scheduler.Plan{
		Rounds:   plan.rounds,
		Interval: plan.interval,
		Sleep:    plan.sleep,
		Domains: func() ([]string, error) {
			var ds []string
			var err error
			if plan.dueOnly {
				ds, err = store.Due(now())
			} else {
				ds, err = store.Active()
			}
			// Probes this round: every domain through every vantage.
			planned += int64(len(ds) * len(vantages))
			bar.setTotal(planned)
			return ds, err
		},
		AfterRound: func(round int, st scheduler.Stats) {
			log.Info("round done", "round", round, "probes", st.Probes, "queries", st.QueriesSent,
				"answered", st.Answered, "elapsed", st.Elapsed.Round(time.Millisecond))
		},
	}, w)
	closeErr := w.Close()
	_, stored := w.Committed()
	sum := crawlSummary{Stats: st, Rounds: plan.rounds, Vantages: len(vantages), Interrupted: ctx.Err() != nil, Health: sched.Health()}
	sum.Observations = stored
	sum.ElapsedSeconds = time.Since(start).Seconds()
	if sum.ElapsedSeconds > 0 {
		sum.QPS = float64(st.QueriesSent) / sum.ElapsedSeconds
	}
	if runErr != nil {
		return sum, runErr
	}
	return sum, closeErr
}

// crawlSummary is the crawl's closing line; its JSON keys are a contract.
type crawlSummary struct {
	scheduler.Stats
	Rounds         int            `json:"rounds"`
	Vantages       int            `json:"vantages"`
	FailedByClass  map[string]int `json:"queries_failed"`
	ElapsedSeconds float64        `json:"elapsed_seconds"`
	QPS            float64        `json:"queries_per_second"`
	Interrupted    bool           `json:"interrupted"`
	// Health is each vantage's probes, failures (timeouts, network errors,
	// REFUSED), domains skipped while it rested, and whether it is healthy.
	Health map[string]scheduler.HealthStats `json:"vantage_health"`
}

func (s crawlSummary) print(w io.Writer, asJSON bool) error {
	s.FailedByClass = map[string]int{}
	var failed []string
	for class, n := range s.Failed {
		s.FailedByClass[class.String()] = n
		failed = append(failed, fmt.Sprintf("%s %d", class, n))
	}
	sort.Strings(failed)
	if asJSON {
		return json.NewEncoder(w).Encode(s)
	}
	fails := "none"
	if len(failed) > 0 {
		fails = strings.Join(failed, ", ")
	}
	note := ""
	if s.Interrupted {
		note = "; interrupted"
	}
	var resting []string
	for addr, h := range s.Health {
		if !h.Healthy {
			resting = append(resting, fmt.Sprintf("%s (%d of %d probes failed, %d domains skipped)", addr, h.Failures, h.Probes, h.Skipped))
		}
	}
	sort.Strings(resting)
	if len(resting) > 0 {
		note += "; resting vantages: " + strings.Join(resting, ", ")
	}
	_, err := fmt.Fprintf(w, "crawl: %d probes, %d queries sent, %d answered, failed: %s; %d observations stored in %.1fs (%.0f queries/s)%s\n",
		s.Probes, s.QueriesSent, s.Answered, fails, s.Observations, s.ElapsedSeconds, s.QPS, note)
	return err
}
