package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/feed"
	"github.com/fluxwatch/fluxwatch/obs"
)

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// value returns the value of the metric of family name whose labels
// include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("%s has no series with labels %v", name, want)
	return 0
}

func TestEveryMetricIsRecorded(t *testing.T) {
	db := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(db, make([]byte, 4096), 0o600)
	m := New(db)
	v := "127.0.0.1:5301"
	m.InFlight(v, 1)
	m.Query(v, dns.TypeA, obs.OK, 20*time.Millisecond, 3*time.Millisecond)
	m.Query(v, dns.TypeA, obs.OK, 0, time.Millisecond)
	m.Query(v, dns.TypeNS, obs.Timeout, 0, 0)
	m.InFlight(v, 1)
	m.InFlight(v, -1)
	m.Classified(map[string]int{classify.SingleFlux: 3, classify.Benign: 7, classify.CountAdded: 2, classify.CountExpired: 1, classify.CountCleared: 4})
	m.Job("crawl", time.Second, nil)
	m.Job("crawl", time.Second, errors.New("boom"))
	m.Transaction(5 * time.Millisecond)
	m.CommittedFrom(func() (int64, int64) { return 10, 30 })
	feedStats := feed.Stats{Serial: 2026120601, Versions: 3, SOAQueries: 4, AXFR: 5, IXFRIncremental: 6, IXFRFull: 7,
		IXFRUpToDate: 8, Refused: 9, BadTSIG: 10, NotifySent: 11, NotifyAcked: 12, NotifyFailed: 13}
	m.FeedFrom(func() feed.Stats { return feedStats })
	m.CoordinatorFrom(func() IngestCounts {
		return IngestCounts{Received: 21, Stored: 22, Redelivered: 23, Terminated: 24, Batches: 25, Retried: 26}
	})
	m.ShardFrom(func() ShardCounts {
		return ShardCounts{Shard: 2, Shards: 3, Lag: 31, MovedOut: 32, MovedIn: 33, MovePending: 34, LastPublish: time.Unix(1700000000, 0)}
	})

	f := gather(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"fluxwatch_queries_total", map[string]string{"vantage": v, "qtype": "A", "outcome": "ok"}, 2},
		{"fluxwatch_queries_total", map[string]string{"vantage": v, "qtype": "NS", "outcome": "timeout"}, 1},
		{"fluxwatch_query_duration_seconds", map[string]string{"vantage": v}, 2}, // timeouts have no RTT
		{"fluxwatch_ratelimit_wait_seconds_total", map[string]string{"vantage": v}, 0.02},
		{"fluxwatch_queries_in_flight", map[string]string{"vantage": v}, 1},
		{"fluxwatch_domains", map[string]string{"verdict": "single-flux"}, 3},
		{"fluxwatch_domains", map[string]string{"verdict": "benign"}, 7},
		{"fluxwatch_listings_total", map[string]string{"change": "added"}, 2},
		{"fluxwatch_listings_total", map[string]string{"change": "expired"}, 1},
		{"fluxwatch_listings_total", map[string]string{"change": "cleared"}, 4},
		{"fluxwatch_job_runs_total", map[string]string{"job": "crawl"}, 2},
		{"fluxwatch_job_failures_total", map[string]string{"job": "crawl"}, 1},
		{"fluxwatch_job_duration_seconds", map[string]string{"job": "crawl"}, 2},
		{"fluxwatch_db_transaction_seconds", nil, 1},
		{"fluxwatch_committed_total", map[string]string{"kind": "observations"}, 30},
		{"fluxwatch_db_size_bytes", nil, 4096},
		{"fluxwatch_feed_serial", nil, 2026120601},
		{"fluxwatch_feed_ixfr_versions", nil, 3},
		{"fluxwatch_feed_soa_queries_total", nil, 4},
		{"fluxwatch_feed_transfers_total", map[string]string{"kind": "axfr"}, 5},
		{"fluxwatch_feed_transfers_total", map[string]string{"kind": "ixfr_incremental"}, 6},
		{"fluxwatch_feed_transfers_total", map[string]string{"kind": "ixfr_full"}, 7},
		{"fluxwatch_feed_transfers_total", map[string]string{"kind": "ixfr_up_to_date"}, 8},
		{"fluxwatch_feed_refused_total", map[string]string{"reason": "refused"}, 9},
		{"fluxwatch_feed_refused_total", map[string]string{"reason": "bad_tsig"}, 10},
		{"fluxwatch_feed_notifies_sent_total", nil, 11},
		{"fluxwatch_feed_notifies_acked_total", nil, 12},
		{"fluxwatch_feed_notify_failures_total", nil, 13},
		{"fluxwatch_coordinator_received_total", nil, 21},
		{"fluxwatch_coordinator_stored_total", nil, 22},
		{"fluxwatch_coordinator_redelivered_total", nil, 23},
		{"fluxwatch_coordinator_terminated_total", nil, 24},
		{"fluxwatch_coordinator_batches_total", nil, 25},
		{"fluxwatch_coordinator_retried_total", nil, 26},
		{"fluxwatch_shard_count", map[string]string{"shard": "2"}, 3},
		{"fluxwatch_shard_lag", map[string]string{"shard": "2"}, 31},
		{"fluxwatch_shard_moved_out_total", map[string]string{"shard": "2"}, 32},
		{"fluxwatch_shard_moved_in_total", map[string]string{"shard": "2"}, 33},
		{"fluxwatch_shard_move_pending", map[string]string{"shard": "2"}, 34},
		{"fluxwatch_shard_last_publish_timestamp_seconds", map[string]string{"shard": "2"}, 1700000000},
	} {
		if got := value(t, f, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v; want %v", c.name, c.labels, got, c.want)
		}
	}

	// The counts are read at every scrape.
	feedStats.AXFR++
	if got := value(t, gather(t, m), "fluxwatch_feed_transfers_total", map[string]string{"kind": "axfr"}); got != 6 {
		t.Errorf("after one more AXFR fluxwatch_feed_transfers_total{kind=axfr} = %v; want 6", got)
	}

	// Served in the text format, the Go runtime's metrics alongside.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.Contains(string(body), `fluxwatch_queries_total{outcome="ok",qtype="A",vantage="127.0.0.1:5301"} 2`) ||
		!strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("/metrics: %d\n%s", rec.Code, body)
	}
}

// Every fluxwatch_ metric is in README.md's metrics table, and the table
// names no metric that does not exist.
func TestMetricsAreDocumented(t *testing.T) {
	m := New(filepath.Join(t.TempDir(), "x.db"))
	m.Query("v", dns.TypeA, obs.OK, time.Millisecond, time.Millisecond)
	m.InFlight("v", 0)
	m.Classified(map[string]int{})
	m.Job("j", 0, errors.New("x"))
	m.Transaction(0)
	m.CommittedFrom(func() (int64, int64) { return 0, 0 })
	m.FeedFrom(func() feed.Stats { return feed.Stats{} })
	m.CoordinatorFrom(func() IngestCounts { return IngestCounts{} })
	m.ShardFrom(func() ShardCounts { return ShardCounts{} })
	var have []string
	for name := range gather(t, m) {
		if strings.HasPrefix(name, "fluxwatch_") {
			have = append(have, name)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, mm := range regexp.MustCompile("(?m)^\\| `(fluxwatch_[a-z_]+)`").FindAllStringSubmatch(string(readme), -1) {
		documented = append(documented, mm[1])
	}
	slices.Sort(have)
	slices.Sort(documented)
	if !slices.Equal(have, documented) {
		t.Fatalf("metrics %v\nREADME documents %v", have, documented)
	}
}
