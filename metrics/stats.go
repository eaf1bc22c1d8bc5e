package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fluxwatch/fluxwatch/feed"
)

// The counters that components keep themselves (the zone server's, the
// coordinator's) are exported by collectors that read them at every
// scrape: one read per scrape, so the series of one scrape agree with
// each other.

// statsCollector exports what one call of read returns as metrics.
type statsCollector[S any] struct {
	read    func() S
	metrics []statMetric[S]
}

// statMetric is one series of a statsCollector.
type statMetric[S any] struct {
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	labels []string // values of desc's variable labels
	value  func(S) float64
}

func (c *statsCollector[S]) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, m := range c.metrics {
		if !seen[m.desc] {
			seen[m.desc] = true
			ch <- m.desc
		}
	}
}

func (c *statsCollector[S]) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s), m.labels...)
	}
}

// FeedFrom reports, at every scrape, the counts of the RPZ zone server
// that stats returns (a feed.Server's Stats): transfers by kind, SOA
// queries, refusals, NOTIFYs, and the serial and versions served.
func (m *Metrics) FeedFrom(stats func() feed.Stats) {
	name := func(n string) string { return prometheus.BuildFQName("fluxwatch", "feed", n) }
	transfers := prometheus.NewDesc(name("transfers_total"),
		"Zone transfers answered, by kind: axfr (AXFR requests), ixfr_incremental (IXFR answered with the differences), ixfr_full (IXFR answered with the whole zone: serial unknown or too old), ixfr_up_to_date (IXFR answered with the SOA alone).",
		[]string{"kind"}, nil)
	refused := prometheus.NewDesc(name("refused_total"),
		"Requests refused, by reason: refused (unsigned transfers, other names and types: REFUSED), bad_tsig (a TSIG signature that did not verify: NOTAUTH).",
		[]string{"reason"}, nil)
	counter := func(d *prometheus.Desc, label string, v func(feed.Stats) uint64) statMetric[feed.Stats] {
		var labels []string
		if label != "" {
			labels = []string{label}
		}
		return statMetric[feed.Stats]{desc: d, kind: prometheus.CounterValue, labels: labels, value: func(s feed.Stats) float64 { return float64(v(s)) }}
	}
	plain := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(name(n), help, nil, nil) }
	m.Registry.MustRegister(&statsCollector[feed.Stats]{read: stats, metrics: []statMetric[feed.Stats]{
		counter(transfers, "axfr", func(s feed.Stats) uint64 { return s.AXFR }),
		counter(transfers, "ixfr_incremental", func(s feed.Stats) uint64 { return s.IXFRIncremental }),
		counter(transfers, "ixfr_full", func(s feed.Stats) uint64 { return s.IXFRFull }),
		counter(transfers, "ixfr_up_to_date", func(s feed.Stats) uint64 { return s.IXFRUpToDate }),
		counter(refused, "refused", func(s feed.Stats) uint64 { return s.Refused }),
		counter(refused, "bad_tsig", func(s feed.Stats) uint64 { return s.BadTSIG }),
		counter(plain("soa_queries_total", "SOA queries answered."), "", func(s feed.Stats) uint64 { return s.SOAQueries }),
		counter(plain("notifies_sent_total", "NOTIFY messages sent to secondaries, retries included."), "",
			func(s feed.Stats) uint64 { return s.NotifySent }),
		counter(plain("notifies_acked_total", "NOTIFY messages secondaries answered with NOERROR."), "",
			func(s feed.Stats) uint64 { return s.NotifyAcked }),
		counter(plain("notify_failures_total", "Secondaries that never acknowledged the NOTIFY of a version, retries exhausted."), "",
			func(s feed.Stats) uint64 { return s.NotifyFailed }),
		{desc: plain("serial", "SOA serial of the zone version served; 0 before the first publish."), kind: prometheus.GaugeValue,
			value: func(s feed.Stats) float64 { return float64(s.Serial) }},
		{desc: plain("ixfr_versions", "Versions kept as differences for incremental transfers."), kind: prometheus.GaugeValue,
			value: func(s feed.Stats) float64 { return float64(s.Versions) }},
	}})
}

// IngestCounts are the coordinator's counts of the observations agents
// send (cluster.CoordinatorStats, which the daemon hands over: this
// package does not import the cluster and its NATS client).
type IngestCounts struct {
	Received    int64 // observation messages taken from the stream
	Stored      int64 // messages committed to the database, redeliveries included
	Redelivered int64 // messages delivered more than once
	Terminated  int64 // messages that can never be stored (malformed, unknown domain): terminated, never redelivered
	Retried     int64 // deliveries given back for a delayed redelivery: the database failed to read or write, for now
	Batches     int64 // transactions that stored them
}

// CoordinatorFrom reports, at every scrape, the coordinator's counts that
// stats returns.
func (m *Metrics) CoordinatorFrom(stats func() IngestCounts) {
	counter := func(n, help string, v func(IngestCounts) int64) statMetric[IngestCounts] {
		return statMetric[IngestCounts]{desc: prometheus.NewDesc(prometheus.BuildFQName("fluxwatch", "coordinator", n), help, nil, nil),
			kind: prometheus.CounterValue, value: func(s IngestCounts) float64 { return float64(v(s)) }}
	}
	m.Registry.MustRegister(&statsCollector[IngestCounts]{read: stats, metrics: []statMetric[IngestCounts]{
		counter("received_total", "Observation messages the coordinator took from the stream.", func(s IngestCounts) int64 { return s.Received }),
		counter("stored_total", "Observation messages committed to the database, redeliveries included.", func(s IngestCounts) int64 { return s.Stored }),
		counter("redelivered_total", "Observation messages delivered more than once (not acknowledged in time, or after a failed commit).",
			func(s IngestCounts) int64 { return s.Redelivered }),
		counter("terminated_total", "Observation messages that can never be stored (malformed, unknown domain): terminated, not redelivered.",
			func(s IngestCounts) int64 { return s.Terminated }),
		counter("retried_total", "Observation deliveries given back for a delayed redelivery because the database failed to read or write them.",
			func(s IngestCounts) int64 { return s.Retried }),
		counter("batches_total", "Database transactions that stored observation messages.", func(s IngestCounts) int64 { return s.Batches }),
	}})
}

// ShardCounts are what a coordinator of a sharded cluster says of its
// shard (cluster.ShardStatus, which the daemon hands over).
type ShardCounts struct {
	Shard, Shards int
	Lag           uint64 // observations waiting in the stream for the shard
	MovedOut      int64  // domains handed to other shards
	MovedIn       int64  // domains taken from other shards
	MovePending   int    // domains held that another shard owns
	LastPublish   time.Time
}

// ShardFrom reports, at every scrape, the shard's counts that stats
// returns, each labelled with the shard: a dashboard over the K
// coordinators' /metrics tells the shards apart.
func (m *Metrics) ShardFrom(stats func() ShardCounts) {
	desc := func(n, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("fluxwatch", "shard", n), help, []string{"shard"}, nil)
	}
	metric := func(n, help string, kind prometheus.ValueType, v func(ShardCounts) float64) statMetric[ShardCounts] {
		return statMetric[ShardCounts]{desc: desc(n, help), kind: kind, value: v}
	}
	ms := []statMetric[ShardCounts]{
		metric("count", "How many shards the cluster has (its shard map).", prometheus.GaugeValue,
			func(s ShardCounts) float64 { return float64(s.Shards) }),
		metric("lag", "Observations waiting in the stream for this shard, delivered and not yet stored included.", prometheus.GaugeValue,
			func(s ShardCounts) float64 { return float64(s.Lag) }),
		metric("moved_out_total", "Domains this shard handed, with their history, to the shards that own them.", prometheus.CounterValue,
			func(s ShardCounts) float64 { return float64(s.MovedOut) }),
		metric("moved_in_total", "Domains other shards handed to this one.", prometheus.CounterValue,
			func(s ShardCounts) float64 { return float64(s.MovedIn) }),
		metric("move_pending", "Domains this shard holds that another shard owns: still to hand over.", prometheus.GaugeValue,
			func(s ShardCounts) float64 { return float64(s.MovePending) }),
		metric("last_publish_timestamp_seconds", "When this shard last published its list (Unix time); 0 before its first.", prometheus.GaugeValue,
			func(s ShardCounts) float64 {
				if s.LastPublish.IsZero() {
					return 0
				}
				return float64(s.LastPublish.UnixNano()) / 1e9
			}),
	}
	// The label is the shard, read with the counts at each scrape.
	m.Registry.MustRegister(&shardCollector{&statsCollector[ShardCounts]{read: stats, metrics: ms}})
}

// shardCollector labels each series of a statsCollector with the shard
// its read returned.
type shardCollector struct{ c *statsCollector[ShardCounts] }

func (s *shardCollector) Describe(ch chan<- *prometheus.Desc) { s.c.Describe(ch) }

func (s *shardCollector) Collect(ch chan<- prometheus.Metric) {
	v := s.c.read()
	shard := strconv.Itoa(v.Shard)
	for _, m := range s.c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(v), shard)
	}
}
