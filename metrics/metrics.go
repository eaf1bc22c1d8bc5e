// Package metrics holds the daemon's Prometheus metrics, in a registry of
// its own (not the global one), and serves them on /metrics. Every metric
// is named fluxwatch_…; README.md lists them.
package metrics

import (
	"net/http"
	"os"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/obs"
)

// Metrics is the daemon's set of metrics. Its methods are safe for
// concurrent use. It implements scheduler.Observer.
type Metrics struct {
	Registry *prometheus.Registry

	queries     *prometheus.CounterVec
	rtt         *prometheus.HistogramVec
	wait        *prometheus.CounterVec
	inFlight    *prometheus.GaugeVec
	domains     *prometheus.GaugeVec
	listings    *prometheus.CounterVec
	jobRuns     *prometheus.CounterVec
	jobFailures *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	txDuration  prometheus.Histogram
}

// New returns the metrics, registered in a new registry together with the
// Go runtime and process collectors. dbPath, if not empty, is the database
// file whose size fluxwatch_db_size_bytes reports.
func New(dbPath string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxwatch_queries_total",
			Help: "DNS queries sent, by vantage (or parent zone server), query type and outcome (ok, timeout, network, truncated, refused, servfail, nxdomain, malformed, rcode).",
		}, []string{"vantage", "qtype", "outcome"}),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fluxwatch_query_duration_seconds",
			Help:    "Round-trip time of answered DNS queries, by vantage.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"vantage"}),
		wait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxwatch_ratelimit_wait_seconds_total",
			Help: "Time queries spent waiting for rate-limit tokens, by vantage.",
		}, []string{"vantage"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fluxwatch_queries_in_flight",
			Help: "DNS queries sent and not yet answered or timed out, by vantage.",
		}, []string{"vantage"}),
		domains: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fluxwatch_domains",
			Help: "Domains by verdict as of the last classification.",
		}, []string{"verdict"}),
		listings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxwatch_listings_total",
			Help: "Changes of the block list: added (newly listed), expired, cleared (by a benign verdict on the same evidence), removed (allowlisted or delisted by hand).",
		}, []string{"change"}),
		jobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxwatch_job_runs_total",
			Help: "Daemon job runs, by job.",
		}, []string{"job"}),
		jobFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxwatch_job_failures_total",
			Help: "Daemon job runs that failed, by job.",
		}, []string{"job"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fluxwatch_job_duration_seconds",
			Help:    "How long daemon job runs took, by job.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 9), // 10 ms to 11 min
		}, []string{"job"}),
		txDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fluxwatch_db_transaction_seconds",
			Help:    "Duration of the database write transactions that store observations.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8), // 1 ms to 16 s
		}),
	}
	m.Registry.MustRegister(m.queries, m.rtt, m.wait, m.inFlight, m.domains, m.listings,
		m.jobRuns, m.jobFailures, m.jobDuration, m.txDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if dbPath != "" {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fluxwatch_db_size_bytes",
			Help: "Size of the database file.",
		}, func() float64 {
			fi, err := os.Stat(dbPath)
			if err != nil {
				return 0
			}
			return float64(fi.Size())
		}))
	}
	return m
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Query counts one query (scheduler.Observer).
func (m *Metrics) Query(vantage string, qtype uint16, outcome obs.ErrClass, wait, rtt time.Duration) {
	m.queries.WithLabelValues(vantage, qtypeName(qtype), outcome.String()).Inc()
	if wait > 0 {
		m.wait.WithLabelValues(vantage).Add(wait.Seconds())
	}
	if outcome != obs.Timeout && outcome != obs.Network {
		m.rtt.WithLabelValues(vantage).Observe(rtt.Seconds())
	}
}

// InFlight moves the in-flight gauge of vantage (scheduler.Observer).
func (m *Metrics) InFlight(vantage string, delta int) {
	m.inFlight.WithLabelValues(vantage).Add(float64(delta))
}

func qtypeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "other"
}

// Classified records the counts of one classification, as classify.Run
// returns them: the verdicts and the listing changes.
func (m *Metrics) Classified(counts map[string]int) {
	for _, v := range classify.Verdicts {
		m.domains.WithLabelValues(v).Set(float64(counts[v]))
	}
	for key, change := range map[string]string{classify.CountAdded: "added", classify.CountExpired: "expired", classify.CountCleared: "cleared", classify.CountRemoved: "removed"} {
		m.listings.WithLabelValues(change).Add(float64(counts[key]))
	}
}

// Job records one run of a daemon job.
func (m *Metrics) Job(name string, took time.Duration, err error) {
	m.jobRuns.WithLabelValues(name).Inc()
	m.jobDuration.WithLabelValues(name).Observe(took.Seconds())
	if err != nil {
		m.jobFailures.WithLabelValues(name).Inc()
	}
}

// Transaction records one database write transaction.
func (m *Metrics) Transaction(took time.Duration) { m.txDuration.Observe(took.Seconds()) }

// CommittedFrom reports, as fluxwatch_committed_total, the running totals
// of probes and observations that committed returns (a storage.Writer's
// Committed).
func (m *Metrics) CommittedFrom(committed func() (probes, observations int64)) {
	for kind, pick := range map[string]func() float64{
		"probes":       func() float64 { p, _ := committed(); return float64(p) },
		"observations": func() float64 { _, o := committed(); return float64(o) },
	} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "fluxwatch_committed_total",
			Help:        "Probes and observations the daemon's crawls committed to the database.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, pick))
	}
}
