package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	const domains, rounds, batch = 200_000, 10, 5_000 // the writer's default batch
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

// BenchmarkCodec encodes and decodes the observations of one probe (A,
// AAAA and NS answers) and one answer set.
func BenchmarkCodec(b *testing.B) {
	os := []storedObs{
		{offset: 120 * time.Microsecond, qtype: dns.TypeA, flags: obs.FlagRA, rtt: 310 * time.Microsecond, setID: 123456, ttls: []uint32{300}},
		{offset: 480 * time.Microsecond, qtype: dns.TypeAAAA, flags: obs.FlagRA, rtt: 290 * time.Microsecond},
		{offset: 800 * time.Microsecond, qtype: dns.TypeNS, flags: obs.FlagRA, rtt: 305 * time.Microsecond, setID: 77, ttls: []uint32{86400}},
	}
	set := []obs.Record{{Name: "x.test", Type: dns.TypeA, Data: "192.0.2.1"}, {Name: "x.test", Type: dns.TypeA, Data: "192.0.2.7"}}
	names := &mapNames{ids: map[string]uint64{"x.test": 1}, strs: map[uint64]string{1: "x.test"}}
	var buf, setBuf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeProbe(os, buf[:0])
		if _, err := decodeProbe(buf); err != nil {
			b.Fatal(err)
		}
		var err error
		if setBuf, err = encodeSet(set, "x.test", names, setBuf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf))/3, "bytes/obs-value")
}

type mapNames struct {
	ids  map[string]uint64
	strs map[uint64]string
}

func (m *mapNames) id(s string) (uint64, error)   { return m.ids[s], nil }
func (m *mapNames) str(id uint64) (string, error) { return m.strs[id], nil }

// BenchmarkCrawlMemoryPerDomain reports what a crawl holds in memory for
// each domain it tracks: the list Active returns and the writer's cache of
// domain ids, names of 19 characters. (A round adds 8 bytes a domain for
// its TTLs, and 40 while it hands the next-due times over.)
func BenchmarkCrawlMemoryPerDomain(b *testing.B) {
	const domains = 200_000
	path := filepath.Join(b.TempDir(), "m.db")
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, domains)
	for i := range names {
		names[i] = fmt.Sprintf("d%07d.bench.test", i)
	}
	if _, err := s.AddDomains(names, "bench", t0); err != nil {
		b.Fatal(err)
	}
	s.Close()
	names = nil
	var perDomain float64
	for range b.N {
		s, err := Open(path) // an empty cache
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		list, err := s.Active()
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perDomain = float64(after.HeapAlloc-before.HeapAlloc) / domains
		runtime.KeepAlive(list)
		s.Close()
	}
	b.ReportMetric(perDomain, "bytes/domain")
}
