package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/control"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/scheduler"
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
	// Cluster is the shard map and every shard's last status, when the
	// daemon is a coordinator (sharded or not: a cluster of one has no
	// map until it is resharded).
	Cluster *cluster.ClusterState `json:"cluster,omitempty"`
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

// status keeps the daemon's Status and writes it, after every job
// run, to DB.status.json (atomically) for `fluxwatch status`.
type status struct {
	mu   sync.Mutex
	path string
	s    Status
	next map[string]func() time.Time
	// What the snapshot asks of others (set by sources, under mu): called
	// without mu, as the cluster's state takes a NATS round trip.
	health  func() map[string]scheduler.HealthStats
	agents  func() []cluster.AgentStatus // nil: no coordinator
	cluster func() *cluster.ClusterState // likewise
}

// sources sets what the snapshot asks the scheduler (health) and the
// coordinator (agents and clusterState); nil leaves what was set before.
func (d *status) sources(health func() map[string]scheduler.HealthStats, agents func() []cluster.AgentStatus, clusterState func() *cluster.ClusterState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if health != nil {
		d.health = health
	}
	if agents != nil {
		d.agents, d.cluster = agents, clusterState
	}
}

// StatusPath is the file the daemon on db writes its status to.
func StatusPath(db string) string { return db + ".status.json" }

// ReadStatusFile reads the status the last daemon on db wrote.
func ReadStatusFile(db string) (Status, error) {
	var st Status
	b, err := os.ReadFile(StatusPath(db))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", StatusPath(db), err)
	}
	return st, nil
}

func newStatus(db string) *status {
	return &status{path: StatusPath(db), s: Status{PID: os.Getpid(), DB: db, Verdicts: map[string]int{}},
		next: map[string]func() time.Time{}}
}

// schedule registers a job (again, after a reload) with its next-run clock.
func (d *status) schedule(name, spec string, next func() time.Time) {
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

func (d *status) started(now time.Time) {
	d.mu.Lock()
	if d.s.Started.IsZero() {
		d.s.Started = now.UTC()
	}
	d.mu.Unlock()
	d.save(now)
}

func (d *status) ran(name string, at time.Time, took time.Duration, err error) {
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

func (d *status) classified(counts map[string]int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.s.Verdicts, d.s.Listed = map[string]int{}, 0
	for _, v := range classify.Verdicts {
		d.s.Verdicts[v] = counts[v]
	}
	d.s.Listed = counts[classify.CountListed]
}

// StoredCounts counts the stored verdicts by kind, the listed ones (under
// classify.CountListed, as a classification counts them) and the domains.
func StoredCounts(store *storage.Store) (map[string]int, storage.DomainCounts, error) {
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
func (d *status) domains(c storage.DomainCounts) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.s.Domains = &c
}

func (d *status) stopped(now time.Time) {
	d.mu.Lock()
	t := now.UTC()
	d.s.Stopped = &t
	d.mu.Unlock()
	d.save(now)
}

// snapshot returns the status as of now.
func (d *status) snapshot(now time.Time) Status {
	d.mu.Lock()
	s := d.s
	s.Updated = now.UTC()
	s.Jobs = slices.Clone(d.s.Jobs)
	for i := range s.Jobs {
		if next := d.next[s.Jobs[i].Name]; next != nil && s.Stopped == nil {
			s.Jobs[i].NextRun = next().UTC()
		}
	}
	health, agents, clusterState := d.health, d.agents, d.cluster
	d.mu.Unlock()
	if health != nil {
		s.Vantages = health()
	}
	if agents != nil {
		s.Agents = agents()
	}
	if clusterState != nil {
		s.Cluster = clusterState()
	}
	return s
}

// save writes the status file; a failure only costs `fluxwatch status`
// its freshness.
func (d *status) save(now time.Time) {
	s := d.snapshot(now)
	results.WriteFileAtomic(d.path, func(w io.Writer) error { return json.NewEncoder(w).Encode(s) })
}
