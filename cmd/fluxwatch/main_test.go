package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// fw runs a fluxwatch command line in-process.
func fw(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func startWorld(t *testing.T, seed int64) *simnet.World {
	t.Helper()
	w, err := simnet.Start(context.Background(), simnet.Config{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// seedWorld adds the world's domains to a new database and returns its path
// and the vantage flags for crawl.
func seedWorld(t *testing.T, w *simnet.World) (db string, vantageFlags []string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "fw.db")
	seedsFile := filepath.Join(dir, "seeds.txt")
	f, _ := os.Create(seedsFile)
	if err := w.WriteSeeds(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, stderr, err := fw(t, "", "seeds", "add", "--db", db, "--source", "sim", seedsFile); err != nil {
		t.Fatalf("seeds add: %v\n%s", err, stderr)
	}
	for _, v := range w.Vantages() {
		vantageFlags = append(vantageFlags, "--resolver", v)
	}
	return db, vantageFlags
}

func TestDemoMatchesTheWorldsTruth(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, err := fw(t, "", "demo", "--out", dir, "--log-level", "warn")
	if err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, stdout, stderr)
	}
	f, err := os.Open(filepath.Join(dir, "verdicts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var flux []string
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v classify.Verdict
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("verdicts.jsonl: %v", err)
		}
		n++
		switch v.Truth {
		case simnet.ClassSingleFlux, simnet.ClassDoubleFlux:
			flux = append(flux, v.Domain)
			if v.Verdict != v.Truth {
				t.Errorf("%s is %s but classified %s: %s", v.Domain, v.Truth, v.Verdict, v.Evidence)
			}
		case simnet.ClassBenign, simnet.ClassBroken:
			if classify.IsFlux(v.Verdict) {
				t.Errorf("%s is %s but listed as %s: %s", v.Domain, v.Truth, v.Verdict, v.Evidence)
			}
		default:
			t.Errorf("%s has no truth: %q", v.Domain, v.Truth)
		}
	}
	if n == 0 || len(flux) == 0 {
		t.Fatalf("verdicts.jsonl has %d verdicts, %d flux", n, len(flux))
	}
	list, err := os.ReadFile(filepath.Join(dir, "blocklist.txt"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(flux)
	if got := strings.Fields(string(list)); !slices.Equal(got, flux) {
		t.Errorf("blocklist.txt = %v; want the flux domains %v", got, flux)
	}
	checkZone(t, filepath.Join(dir, "blocklist.rpz"))
	if !strings.Contains(stdout, "0 benign or broken domains listed") {
		t.Errorf("demo summary missing:\n%s", stdout)
	}
}

// checkZone loads an RPZ file with BIND's named-checkzone. The test command
// installs it; outside CI a machine without BIND skips the check.
func checkZone(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("named-checkzone"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("named-checkzone not installed (make test-deps installs bind9-utils)")
		}
		t.Skip("named-checkzone not installed")
	}
	out, err := exec.Command("named-checkzone", "fluxwatch.rpz", path).CombinedOutput()
	if err != nil {
		t.Fatalf("named-checkzone: %v\n%s", err, out)
	}
}

func TestCrawlRecordsRotatingAnswers(t *testing.T) {
	w := startWorld(t, 7)
	db, vantages := seedWorld(t, w)
	// Two real seconds are a simulated minute: longer than the flux TTLs.
	// Without delegation every query goes to the world's vantages, which count them.
	args := append([]string{"crawl", "--db", db, "--qps", "0", "--rounds", "3", "--interval", "2s", "--json", "--log-level", "warn", "--delegation=false"}, vantages...)
	stdout, stderr, err := fw(t, "", args...)
	if err != nil {
		t.Fatalf("crawl: %v\n%s", err, stderr)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("summary %q: %v", stdout, err)
	}
	for _, k := range []string{"queries_sent", "queries_answered", "observations_stored", "elapsed_seconds", "queries_per_second"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary lacks %q: %s", k, stdout)
		}
	}
	var received uint64
	for _, n := range w.Queries() {
		received += n
	}
	if sum["queries_sent"].(float64) != float64(received) || received == 0 {
		t.Errorf("summary says %v queries sent; the vantages received %d", sum["queries_sent"], received)
	}

	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stored := 0
	for _, d := range w.Domains() {
		store.History(d.Name, time.Time{}, time.Time{}, func(p obs.Probe) error { stored += len(p.Observations); return nil })
	}
	// Shared name server lookups are sent once but stored with every probe.
	if sum["observations_stored"].(float64) != float64(stored) || float64(stored) < sum["queries_sent"].(float64) {
		t.Errorf("summary says %v observations stored; the database holds %d", sum["observations_stored"], stored)
	}
	for _, d := range w.Domains() {
		if d.Class != simnet.ClassSingleFlux {
			continue
		}
		sets := map[string]bool{}
		probes := 0
		store.History(d.Name, time.Time{}, time.Time{}, func(p obs.Probe) error {
			probes++
			for _, o := range p.Observations {
				if o.Name == d.Name && o.QType == dns.TypeA && len(o.Answer) > 0 {
					var ips []string
					for _, r := range o.Answer {
						ips = append(ips, r.Data)
					}
					sets[strings.Join(ips, " ")] = true
				}
			}
			return nil
		})
		if probes != 3*len(w.Vantages()) || len(sets) < 3 {
			t.Errorf("%s: %d probes, %d distinct A sets; want %d probes and rotation", d.Name, probes, len(sets), 3*len(w.Vantages()))
		}
	}
	store.Close()

	// classify and export stream from the database. Without an IP table
	// nothing would be listed: the world's is what a user would load.
	asn := filepath.Join(t.TempDir(), "asn.tsv")
	af, err := os.Create(asn)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteASNTable(af); err != nil {
		t.Fatal(err)
	}
	af.Close()
	if _, stderr, err := fw(t, "", "classify", "--db", db, "--asn-db", asn); err != nil {
		t.Fatalf("classify: %v\n%s", err, stderr)
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"--format", "jsonl"}, {"--format", "jsonl", "--all"}, {"--format", "domains"}, {"--format", "rpz"}} {
		out := filepath.Join(dir, strings.Join(args, ""))
		if _, stderr, err := fw(t, "", append([]string{"export", "--db", db, "--out", out}, args...)...); err != nil {
			t.Fatalf("export %v: %v\n%s", args, err, stderr)
		}
		b, _ := os.ReadFile(out)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		switch {
		case args[1] == "jsonl" && len(args) == 3:
			if len(lines) != len(w.Domains()) {
				t.Errorf("jsonl --all has %d lines for %d domains", len(lines), len(w.Domains()))
			}
		case args[1] == "jsonl":
			var v classify.Verdict
			json.Unmarshal([]byte(lines[0]), &v)
			if !classify.IsFlux(v.Verdict) || v.Features.Addresses == 0 {
				t.Errorf("jsonl of listed domains: %s", lines[0])
			}
		case args[1] == "rpz":
			checkZone(t, out)
		}
	}
	// show prints the timeline, or with --probes every probe.
	vs := slices.Sorted(slices.Values(w.Vantages()))
	out, _, err := fw(t, "", "show", "--db", db, w.Domains()[0].Name)
	if err != nil || !strings.Contains(out, "V1 = "+vs[0]) || !strings.Contains(out, "ROUND  TIME") {
		t.Errorf("show: %v\n%s", err, out)
	}
	out, _, err = fw(t, "", "show", "--probes", "--db", db, w.Domains()[0].Name)
	if err != nil || !strings.Contains(out, "via "+w.Vantages()[0]) {
		t.Errorf("show --probes: %v\n%s", err, out)
	}
}

func TestSeedsAddReportsBadLines(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	file := filepath.Join(dir, "list.txt")
	os.WriteFile(file, []byte("# feed\nEvil.Example.\n192.0.2.1\n*.wild.example\n0.0.0.0 tracker.example\n||ads.example^\nhttps://phish.example/login\n"+strings.Repeat("a", 64)+".example\n"), 0o644)
	stdout, stderr, err := fw(t, "", "seeds", "add", "--db", db, file)
	if err != nil {
		t.Fatalf("seeds add: %v\n%s", err, stderr)
	}
	if want := "seeds: 4 added, 0 already known, 3 rejected\n"; stdout != want {
		t.Errorf("stdout %q; want %q", stdout, want)
	}
	for _, want := range []string{
		file + ":3: IP address, not a domain name",
		file + ":4: wildcard not allowed",
		file + ":8: label longer than 63 octets",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	out, _, _ := fw(t, "", "seeds", "list", "--db", db)
	for _, name := range []string{"evil.example", "tracker.example", "ads.example", "phish.example"} {
		if !strings.Contains(out, name+"\t") {
			t.Errorf("seeds list lacks %s:\n%s", name, out)
		}
	}
	// Again from stdin: all known now.
	stdout, _, err = fw(t, "evil.example\n", "seeds", "add", "--db", db, "--source", "list.txt", "-")
	if err != nil || !strings.Contains(stdout, "0 added, 1 already known") {
		t.Errorf("second add: %v %q", err, stdout)
	}
	// Nothing valid: an error.
	os.WriteFile(file, []byte("192.0.2.1\n"), 0o644)
	if _, _, err := fw(t, "", "seeds", "add", "--db", db, file); err == nil || !strings.Contains(err.Error(), "no valid domain name") {
		t.Errorf("all-bad file: %v", err)
	}
	if _, _, err := fw(t, "", "seeds", "remove", "--db", db, "evil.example"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := fw(t, "", "seeds", "list", "--db", db); strings.Contains(out, "evil.example") {
		t.Errorf("removed domain still listed:\n%s", out)
	}
}

func TestSecondOpenerGetsLockError(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fw.db")
	s, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, _, err = fw(t, "", "seeds", "list", "--db", db)
	if !errors.Is(err, storage.ErrLocked) || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	// db check and db compact refuse a database in use as clearly.
	for _, sub := range []string{"check", "compact"} {
		if _, _, err := fw(t, "", "db", sub, "--db", db); !errors.Is(err, storage.ErrLocked) {
			t.Errorf("db %s on a live database: %v", sub, err)
		}
	}
	s.Close()
	for _, sub := range []string{"check", "compact", "check"} {
		if out, _, err := fw(t, "", "db", sub, "--db", db); err != nil || !strings.HasPrefix(out, "db: "+db) {
			t.Errorf("db %s: %v %q", sub, err, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"seeds"}, {"seeds", "add"}, {"crawl", "--rounds", "0"},
		{"crawl", "--qps", "-1"}, {"crawl", "--resolver", "dns.example"}, {"show"}, {"export", "--nope"},
	} {
		_, _, err := fw(t, "", append(args, "--db", filepath.Join(t.TempDir(), "x.db"))...)
		if len(args) == 0 {
			_, _, err = fw(t, "")
		}
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v; want a usage error", args, err)
		}
	}
}

// TestKilledCrawlLosesNoCommittedObservation kills a crawling fluxwatch
// process with SIGKILL after it reported commits, and checks that
// everything it reported is in the database, which is consistent.
func TestKilledCrawlLosesNoCommittedObservation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "fluxwatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w := startWorld(t, 3)
	db, vantages := seedWorld(t, w)
	cmd := exec.Command(bin, append([]string{"crawl", "--db", db, "--qps", "0", "--rounds", "100000", "--interval", "0s", "--log-level", "debug"}, vantages...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	committed := regexp.MustCompile(`msg=committed probes=(\d+) observations=(\d+)`)
	var probes, observations int64
	commits := 0
	sc := bufio.NewScanner(stderr)
	timeout := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timeout.Stop()
	for sc.Scan() {
		m := committed.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		probes, _ = strconv.ParseInt(m[1], 10, 64)
		observations, _ = strconv.ParseInt(m[2], 10, 64)
		if commits++; commits == 3 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	cmd.Wait()
	if commits < 3 {
		t.Fatalf("crawl reported %d commits before ending", commits)
	}
	store, err := storage.Open(db)
	if err != nil {
		t.Fatalf("reopening after kill: %v", err)
	}
	defer store.Close()
	if err := store.Check(); err != nil {
		t.Fatalf("database inconsistent after kill: %v", err)
	}
	var gotProbes, gotObs int64
	for _, d := range w.Domains() {
		store.History(d.Name, time.Time{}, time.Time{}, func(p obs.Probe) error {
			gotProbes++
			gotObs += int64(len(p.Observations))
			return nil
		})
	}
	if gotProbes < probes || gotObs < observations {
		t.Fatalf("after the kill the database holds %d probes, %d observations; %d and %d were reported committed",
			gotProbes, gotObs, probes, observations)
	}
}
