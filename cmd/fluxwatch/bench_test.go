package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// BenchmarkTrackedDomains builds a database of N tracked domains (env
// FLUXWATCH_BENCH_DOMAINS, default 100000; the README's figure is for
// 1000000) with three rounds of A, AAAA and NS through two vantages, a
// twentieth of them flux, then times classification as the daemon's job
// runs it and `fluxwatch export --format rpz`, and reports the peak
// resident memory of the process.
func BenchmarkTrackedDomains(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("FLUXWATCH_BENCH_DOMAINS")); err == nil && v > 0 {
		n = v
	}
	db := filepath.Join(b.TempDir(), "big.db")
	if keep := os.Getenv("FLUXWATCH_BENCH_DB"); keep != "" { // to look at it afterwards
		db = keep
	}
	store, err := storage.Open(db)
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("d%07d.bench.test", i)
	}
	now := time.Now().Add(-time.Hour)
	if _, err := store.AddDomains(names, "bench", now); err != nil {
		b.Fatal(err)
	}
	const batch = 20000
	ps := make([]obs.Probe, 0, batch)
	flush := func() {
		if _, err := store.WriteProbes(ps); err != nil {
			b.Fatal(err)
		}
		ps = ps[:0]
	}
	for r := range 3 {
		for v, vantage := range []string{"127.0.0.1:5301", "127.0.0.1:5302"} {
			for i, name := range names {
				at := now.Add(time.Duration(r)*5*time.Minute + time.Duration(i)*time.Microsecond)
				var a []obs.Record
				if i%20 == 0 { // flux: fresh addresses in many networks each time
					for k := range 6 {
						a = append(a, obs.Record{Name: name, Type: dns.TypeA, TTL: 60,
							Data: fmt.Sprintf("%d.%d.%d.%d", 20+(i+k*7+r*3+v)%200, k*30+r, v, 1+i%250)})
					}
				} else {
					a = append(a, obs.Record{Name: name, Type: dns.TypeA, TTL: 300, Data: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)})
				}
				obs.Sort(a)
				ps = append(ps, obs.Probe{Domain: name, Vantage: vantage, Start: at, Observations: []obs.Observation{
					{Time: at, Name: name, QType: dns.TypeA, Answer: a},
					{Time: at, Name: name, QType: dns.TypeAAAA},
					{Time: at, Name: name, QType: dns.TypeNS, Answer: []obs.Record{
						{Name: name, Type: dns.TypeNS, TTL: 86400, Data: fmt.Sprintf("ns1.host%d.test", i%500)}}},
				}})
				if len(ps) == batch {
					flush()
				}
			}
		}
	}
	flush()
	store.Close()
	if os.Getenv("FLUXWATCH_BENCH_BUILD_ONLY") == "1" { // with FLUXWATCH_BENCH_DB: a database to try commands on
		b.Skip("FLUXWATCH_BENCH_BUILD_ONLY=1: database built, nothing timed")
	}
	out := filepath.Join(b.TempDir(), "list.rpz")
	bin := filepath.Join(b.TempDir(), "fluxwatch")
	if msg, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, msg)
	}
	// The commands run as their own processes, so their peak resident
	// memory is theirs alone.
	//
	// Linux carries the parent's peak into a child's ru_maxrss when the
	// child is started sharing the parent's memory (as Go starts
	// processes) and then execs: here that is this test's peak, building
	// the database. GNU time forks a process of its own, whose peak is
	// the command's alone; without it the figure is an upper bound.
	timeBin, _ := exec.LookPath("/usr/bin/time")
	rssFile := filepath.Join(b.TempDir(), "rss")
	runCmd := func(args ...string) (time.Duration, float64) {
		cmd := exec.Command(bin, args...)
		if timeBin != "" {
			cmd = exec.Command(timeBin, append([]string{"-f", "%M", "-o", rssFile, bin}, args...)...)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		took := time.Since(start)
		if timeBin == "" {
			return took, float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
		}
		kb, err := os.ReadFile(rssFile)
		if err != nil {
			b.Fatal(err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(kb)), 64)
		if err != nil {
			b.Fatalf("GNU time wrote %q: %v", kb, err)
		}
		return took, v / 1024
	}
	b.ResetTimer()
	for b.Loop() {
		classified, rss := runCmd("classify", "--db", db, "--log-level", "warn")
		exported, rssExport := runCmd("export", "--db", db, "--format", "rpz", "--out", out)
		b.ReportMetric(classified.Seconds(), "classify-s")
		b.ReportMetric(exported.Seconds(), "export-s")
		b.ReportMetric(max(rss, rssExport), "peak-RSS-MiB")
	}
	b.ReportMetric(float64(n), "domains")
}
