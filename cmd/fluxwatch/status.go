package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/control"
	"github.com/fluxwatch/fluxwatch/feed"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/seeds"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Status is what `fluxwatch status` and the daemon's /status show. It
// holds no secret: no key, token or credential is ever part of it.
type Status struct {
	PID      int            `json:"pid"`
	DB       string         `json:"db"`
	Started  time.Time      `json:"started"`
	Stopped  *time.Time     `json:"stopped,omitempty"`
	Updated  time.Time      `json:"updated"`
	Jobs     []JobStatus    `json:"jobs"`
	Verdicts map[string]int `json:"verdicts"`
	Listed   int            `json:"listed"`
	// Domains counts the active domains and the dark ones among them (no
	// vantage answered their last measurements).
	Domains  *storage.DomainCounts            `json:"domains,omitempty"`
	Vantages map[string]scheduler.HealthStats `json:"vantage_health,omitempty"`
	Agents   []cluster.AgentStatus            `json:"agents,omitempty"`
	// HeldBy is the process that holds the database, if one does.
	HeldBy *control.Holder `json:"held_by,omitempty"`
}

// JobStatus is one daemon job's schedule and last run.
type JobStatus struct {
	Name        string    `json:"name"`
	Schedule    string    `json:"schedule"`
	Runs        int       `json:"runs"`
	Failures    int       `json:"failures"`
	LastRun     time.Time `json:"last_run,omitzero"`
	LastSeconds float64   `json:"last_seconds"`
	LastError   string    `json:"last_error,omitempty"`
	NextRun     time.Time `json:"next_run,omitzero"`
}

// daemonStatus keeps the daemon's Status and writes it, after every job
// run, to DB.status.json (atomically) for `fluxwatch status`.
type daemonStatus struct {
	mu     sync.Mutex
	path   string
	s      Status
	next   map[string]func() time.Time
	health func() map[string]scheduler.HealthStats
	agents func() []cluster.AgentStatus // nil: no coordinator
}

func statusPath(db string) string { return db + ".status.json" }

// readStatusFile reads the status the last daemon on db wrote.
func readStatusFile(db string) (Status, error) {
	var st Status
	b, err := os.ReadFile(statusPath(db))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", statusPath(db), err)
	}
	return st, nil
}

func newDaemonStatus(db string) *daemonStatus {
	return &daemonStatus{path: statusPath(db), s: Status{PID: os.Getpid(), DB: db, Verdicts: map[string]int{}},
		next: map[string]func() time.Time{}}
}

// schedule registers a job (again, after a reload) with its next-run clock.
func (d *daemonStatus) schedule(name, spec string, next func() time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next[name] = next
	i := slices.IndexFunc(d.s.Jobs, func(j JobStatus) bool { return j.Name == name })
	if i < 0 {
		d.s.Jobs = append(d.s.Jobs, JobStatus{Name: name})
		i = len(d.s.Jobs) - 1
	}
	d.s.Jobs[i].Schedule = spec
}

func (d *daemonStatus) started(now time.Time) {
	d.mu.Lock()
	if d.s.Started.IsZero() {
		d.s.Started = now.UTC()
	}
	d.mu.Unlock()
	d.save(now)
}

func (d *daemonStatus) ran(name string, at time.Time, took time.Duration, err error) {
	d.mu.Lock()
	for i := range d.s.Jobs {
		if j := &d.s.Jobs[i]; j.Name == name {
			j.Runs++
			j.LastRun, j.LastSeconds, j.LastError = at.UTC(), took.Seconds(), ""
			if err != nil {
				j.Failures++
				j.LastError = err.Error()
			}
		}
	}
	d.mu.Unlock()
	d.save(at.Add(took))
}

func (d *daemonStatus) classified(counts map[string]int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.s.Verdicts, d.s.Listed = map[string]int{}, 0
	for _, v := range classify.Verdicts {
		d.s.Verdicts[v] = counts[v]
	}
	d.s.Listed = counts[classify.CountListed]
}

// storedCounts counts the stored verdicts by kind, the listed ones (under
// classify.CountListed, as a classification counts them) and the domains.
func storedCounts(store *storage.Store) (map[string]int, storage.DomainCounts, error) {
	counts := map[string]int{}
	err := classify.Each(store, false, func(v classify.Verdict) error {
		counts[v.Verdict]++
		if v.Listed() {
			counts[classify.CountListed]++
		}
		return nil
	})
	if err != nil {
		return nil, storage.DomainCounts{}, err
	}
	domains, err := store.CountDomains()
	return counts, domains, err
}

// domains records the counts of active and dark domains.
func (d *daemonStatus) domains(c storage.DomainCounts) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.s.Domains = &c
}

func (d *daemonStatus) stopped(now time.Time) {
	d.mu.Lock()
	t := now.UTC()
	d.s.Stopped = &t
	d.mu.Unlock()
	d.save(now)
}

// snapshot returns the status as of now.
func (d *daemonStatus) snapshot(now time.Time) Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.s
	s.Updated = now.UTC()
	s.Jobs = slices.Clone(d.s.Jobs)
	for i := range s.Jobs {
		if next := d.next[s.Jobs[i].Name]; next != nil && s.Stopped == nil {
			s.Jobs[i].NextRun = next().UTC()
		}
	}
	if d.health != nil {
		s.Vantages = d.health()
	}
	if d.agents != nil {
		s.Agents = d.agents()
	}
	return s
}

// save writes the status file; a failure only costs `fluxwatch status`
// its freshness.
func (d *daemonStatus) save(now time.Time) {
	s := d.snapshot(now)
	results.WriteFileAtomic(d.path, func(w io.Writer) error { return json.NewEncoder(w).Encode(s) })
}

// httpApp is what the daemon's HTTP listener serves besides the export
// files: /metrics, /status, the write API (only with a token) and the web
// view.
func (d *daemon) httpApp(cfg *config.Config) (http.Handler, error) {
	token, err := feed.APIToken(cfg.Daemon.Serve)
	if err != nil {
		return nil, err
	}
	d.status.health = func() map[string]scheduler.HealthStats { return d.state().sched.Health() }
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metrics.Handler())
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d.status.snapshot(d.now()))
	})
	api := func(relist bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if token == "" {
				http.Error(w, "the API is read-only: set daemon.serve.api_token_file to allow writes", http.StatusForbidden)
				return
			}
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="fluxwatch"`)
				http.Error(w, "a valid bearer token is needed", http.StatusUnauthorized)
				return
			}
			var req struct {
				Domain string `json:"domain"`
				Reason string `json:"reason"`
			}
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
				http.Error(w, "want a JSON body {\"domain\": …, \"reason\": …}", http.StatusBadRequest)
				return
			}
			name, err := seeds.Normalize(req.Domain)
			if err != nil {
				http.Error(w, fmt.Sprintf("domain %q: %v", req.Domain, err), http.StatusBadRequest)
				return
			}
			d.listMu.Lock() // never in the middle of a publish
			if relist {
				_, err = classify.Relist(d.store, name, req.Reason, d.now())
			} else {
				err = classify.Delist(d.store, name, req.Reason, d.now())
			}
			d.listMu.Unlock()
			switch {
			case errors.Is(err, storage.ErrUnknownDomain):
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			case err != nil:
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			d.log.Info("api: listing changed", "domain", name, "relist", relist, "from", r.RemoteAddr)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"domain": name, "delisted": !relist})
		}
	}
	mux.HandleFunc("POST /api/delist", api(false))
	mux.HandleFunc("POST /api/relist", api(true))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		(*d.web.Load()).ServeHTTP(w, r)
	})
	return mux, nil
}

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
		var st Status
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
				if last, err := readStatusFile(cfg.DB); err == nil {
					st = last
				} else if !errors.Is(err, os.ErrNotExist) {
					return err
				}
				counts, domains, err := storedCounts(store)
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
			last, ferr := readStatusFile(cfg.DB)
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
