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

// BenchmarkWriteRounds writes ten rounds of a mixed corpus of 200k domains
// (A, AAAA and NS each) in batches, as a crawl at line rate does, and
// reports probes per second and database bytes per observation.
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
	written, observations := 0, 0
	start := time.Now()
	for range b.N {
		for r := range rounds {
			at := t0.Add(time.Duration(r) * time.Minute)
			ps := make([]obs.Probe, 0, batch)
			for i, name := range names {
				// Mixed corpus: every name asked A, AAAA and NS; most answers
				// stable, a tenth rotating, a third with an IPv6 address,
				// name servers from a thousand hosting pairs.
				ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
				if i%10 == 0 {
					ip = fmt.Sprintf("10.%d.%d.%d", r, i>>8&255, i&255)
				}
				t := at.Add(time.Duration(i) * time.Microsecond)
				p := obs.Probe{Domain: name, Vantage: "127.0.0.1:53", Start: t, Observations: []obs.Observation{
					{Time: t, Name: name, QType: dns.TypeA, Flags: obs.FlagRA, RTT: 300 * time.Microsecond,
						Answer: []obs.Record{{Name: name, Type: dns.TypeA, TTL: 300, Data: ip}}},
					{Time: t, Name: name, QType: dns.TypeAAAA, Flags: obs.FlagRA, RTT: 280 * time.Microsecond},
					{Time: t, Name: name, QType: dns.TypeNS, Flags: obs.FlagRA, RTT: 310 * time.Microsecond, Answer: []obs.Record{
						{Name: name, Type: dns.TypeNS, TTL: 86400, Data: fmt.Sprintf("ns1.host%d.test", i%1000)},
						{Name: name, Type: dns.TypeNS, TTL: 86400, Data: fmt.Sprintf("ns2.host%d.test", i%1000)}}},
				}}
				if i%3 == 0 {
					p.Observations[1].Answer = []obs.Record{{Name: name, Type: dns.TypeAAAA, TTL: 300, Data: fmt.Sprintf("2001:db8::%x:%x", i>>16, i&0xffff)}}
				}
				ps = append(ps, p)
				observations += len(p.Observations)
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
	s.db.View(func(tx *bolt.Tx) error {
		used = tx.Size()
		if os.Getenv("FLUXWATCH_BENCH_DETAIL") != "" {
			for _, name := range allBuckets {
				st := tx.Bucket(name).Stats()
				b.Logf("%-10s keys %8d leaf alloc %10d inuse %10d branch alloc %8d", name, st.KeyN, st.LeafAlloc, st.LeafInuse, st.BranchAlloc)
			}
			b.Logf("db size %d, free pages %d", used, s.db.Stats().FreePageN)
		}
		return nil
	})
	b.ReportMetric(float64(written)/elapsed.Seconds(), "probes/s")
	b.ReportMetric(float64(used)/float64(observations), "bytes/obs")
	b.ReportMetric(float64(fi.Size())/float64(observations), "file-bytes/obs")
}
