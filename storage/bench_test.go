package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/fluxwatch/fluxwatch/obs"
)

// BenchmarkWriteRounds writes rounds of one-observation probes (an A
// answer) for a corpus of domains in batches, as a crawl at line rate
// does, and reports probes per second and database bytes per observation.
func BenchmarkWriteRounds(b *testing.B) {
	const domains, rounds, batch = 200_000, 10, 10_000
	path := filepath.Join(b.TempDir(), "w.db")
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	names := make([]string, domains)
	for i := range names {
		names[i] = fmt.Sprintf("d%07d.bench.test", i)
	}
	if _, err := s.AddDomains(names, "bench", t0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	written := 0
	start := time.Now()
	for range b.N {
		for r := range rounds {
			at := t0.Add(time.Duration(r) * time.Minute)
			ps := make([]obs.Probe, 0, batch)
			for i, name := range names {
				// Mixed corpus: most answers stable, a tenth rotating.
				ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
				if i%10 == 0 {
					ip = fmt.Sprintf("10.%d.%d.%d", r, i>>8&255, i&255)
				}
				ps = append(ps, obs.Probe{Domain: name, Vantage: "127.0.0.1:53", Start: at.Add(time.Duration(i) * time.Microsecond),
					Observations: []obs.Observation{{Time: at.Add(time.Duration(i) * time.Microsecond), Name: name, QType: dns.TypeA, Flags: obs.FlagRA,
						RTT: 300 * time.Microsecond, Answer: []obs.Record{{Name: name, Type: dns.TypeA, TTL: 300, Data: ip}}}}})
				if len(ps) == batch {
					if _, err := s.WriteProbes(ps); err != nil {
						b.Fatal(err)
					}
					written += len(ps)
					ps = ps[:0]
				}
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	fi, _ := os.Stat(path)
	var used int64
	s.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	b.ReportMetric(float64(written)/elapsed.Seconds(), "probes/s")
	b.ReportMetric(float64(used)/float64(written), "bytes/obs")
	b.ReportMetric(float64(fi.Size())/float64(written), "file-bytes/obs")
}
