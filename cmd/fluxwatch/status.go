package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/daemon"
	"github.com/fluxwatch/fluxwatch/storage"
)

// statusCommand prints the daemon's status: from its status file while it
// runs (the database is its own then), else the counts in the database.
func statusCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [flags]",
		Short: "the daemon's jobs, verdict counts and vantages",
		Long: `Print the daemon's state: its jobs with their schedules, last and next runs and
last errors, the verdict counts, the domains, the vantages' health and the
remote agents. While no daemon runs: what the database holds, and the last
daemon's jobs.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	asJSON := s.fs.Bool("json", false, "print the status as one JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		var st daemon.Status
		running := false
		store, err := s.openReader(cfg)
		switch {
		case err == nil:
			defer store.Close()
			h := std.held
			if h != nil && h.status != nil {
				// The daemon holds the database: its own status.
				st, running = h.status(), true
			} else {
				// No daemon: what the database says, and the last daemon's
				// jobs.
				if last, err := daemon.ReadStatusFile(cfg.DB); err == nil {
					st = last
				} else if !errors.Is(err, os.ErrNotExist) {
					return err
				}
				counts, domains, err := daemon.StoredCounts(store)
				if err != nil {
					return err
				}
				st.DB, st.Verdicts, st.Listed, st.Domains = cfg.DB, map[string]int{}, counts[classify.CountListed], &domains
				for _, v := range classify.Verdicts {
					st.Verdicts[v] = counts[v]
				}
			}
			if h != nil {
				st.HeldBy = &h.Holder
			}
		case errors.Is(err, storage.ErrLocked):
			// Held by a process without a control socket: a daemon's status
			// file says what it last wrote.
			last, ferr := daemon.ReadStatusFile(cfg.DB)
			if ferr != nil || last.Stopped != nil || syscall.Kill(last.PID, 0) != nil {
				return err
			}
			st, running = last, true
		default:
			return err
		}
		if *asJSON {
			return json.NewEncoder(std.out).Encode(st)
		}
		state := "not running"
		if running {
			state = fmt.Sprintf("running (pid %d) since %s", st.PID, stamp(st.Started))
		}
		held := ""
		if h := st.HeldBy; h != nil && h.Kind != "daemon" {
			held = fmt.Sprintf(", held by a %s (pid %d) since %s", h.Kind, h.PID, stamp(h.Since))
		}
		fmt.Fprintf(std.out, "daemon: %s; database %s%s\n", state, st.DB, held)
		var parts []string
		for _, v := range classify.Verdicts {
			parts = append(parts, fmt.Sprintf("%s %d", v, st.Verdicts[v]))
		}
		fmt.Fprintf(std.out, "verdicts: %s; listed %d\n", strings.Join(parts, ", "), st.Listed)
		fmt.Fprintln(std.out, ipTablesNote(cfg, time.Now()))
		if c := st.Domains; c != nil {
			fmt.Fprintf(std.out, "domains: %d measured, %d of them dark (no answer in %d or more measurements in a row: measured less often)\n",
				c.Active, c.Dark, storage.DarkAfter)
		}
		if len(st.Jobs) > 0 {
			tw := tabwriter.NewWriter(std.out, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSCHEDULE\tRUNS\tFAILURES\tLAST RUN\tTOOK\tNEXT RUN\tLAST ERROR")
			for _, j := range st.Jobs {
				next := "-"
				if running {
					next = stamp(j.NextRun)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.1fs\t%s\t%s\n", j.Name, j.Schedule, j.Runs, j.Failures, stamp(j.LastRun), j.LastSeconds, next, j.LastError)
			}
			tw.Flush()
		}
		if len(st.Vantages) > 0 {
			for _, v := range slices.Sorted(maps.Keys(st.Vantages)) {
				h := st.Vantages[v]
				fmt.Fprintf(std.out, "vantage %s: healthy %v, %d probes, %d failures, %d skipped, %d canaries\n", v, h.Healthy, h.Probes, h.Failures, h.Skipped, h.Canaries)
			}
		}
		if st.Cluster != nil && (st.Cluster.Map.Shards > 1 || st.Cluster.Map.Moving()) {
			if err := printCluster(std.out, *st.Cluster, std.clock()()); err != nil {
				return err
			}
		}
		for _, a := range st.Agents {
			var errs []string
			for class, n := range a.Errors {
				errs = append(errs, fmt.Sprintf("%s %d", class, n))
			}
			slices.Sort(errs)
			fmt.Fprintf(std.out, "agent %s (%s): last heartbeat %s, %d vantages, %.0f probes/s, %.0f queries/s, %d work items done, errors: %s\n",
				a.Agent, a.Region, stamp(a.Received), len(a.Vantages), a.ProbesPerSecond, a.QueriesPerSecond, a.WorkDone, strings.Join(errs, ", "))
			for _, v := range slices.Sorted(maps.Keys(a.VantageHealth)) {
				h := a.VantageHealth[v]
				fmt.Fprintf(std.out, "  agent %s vantage %s: healthy %v, %d probes, %d failures, %d skipped, %d canaries\n",
					a.Agent, v, h.Healthy, h.Probes, h.Failures, h.Skipped, h.Canaries)
			}
		}
		return nil
	}
	return cmd
}
