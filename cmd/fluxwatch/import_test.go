package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/simnet/eval"
	"github.com/fluxwatch/fluxwatch/storage"
)

// importSummary is the closing line of an import.
type importSummary struct {
	lines, probes, observations, new, duplicate, merged, errors, skipped, domains int
}

var importLine = regexp.MustCompile(`^import: (\d+) lines, (\d+) probes, (\d+) observations: (\d+) new, (\d+) already stored, (\d+) merged into stored probes; (\d+) errors, (\d+) skipped; (\d+) domains added\n$`)

func parseImportSummary(t *testing.T, stdout string) importSummary {
	t.Helper()
	m := importLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no import summary in %q", stdout)
	}
	n := make([]int, len(m)-1)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return importSummary{n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8]}
}

// storeStats opens a database to count what it holds.
func storeStats(t *testing.T, db string) storage.Stats {
	t.Helper()
	s, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// history returns the stored probes of a domain.
func history(t *testing.T, db, domain string) []obs.Probe {
	t.Helper()
	s, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ps []obs.Probe
	if err := s.History(domain, time.Time{}, time.Time{}, func(p obs.Probe) error { ps = append(ps, p); return nil }); err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestImportIsIdempotent imports a dig log twice: the first time its probes
// are stored (two lookups of one second through one resolver merged into
// one probe) and its domains seeded; the second time nothing is new and
// the database holds the same probes.
func TestImportIsIdempotent(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fw.db")
	log := "../../importer/testdata/dig.log"
	stdout, stderr, err := fw(t, "", "import", "--db", db, "--format", "dig", log)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	first := parseImportSummary(t, stdout)
	if want := (importSummary{lines: 129, probes: 6, observations: 11, new: 5, merged: 1, errors: 2, domains: 2}); first != want {
		t.Errorf("first import: %+v; want %+v", first, want)
	}
	for _, e := range []string{log + ":97: bad record: ", log + ":104: not part of a dig output"} {
		if !strings.Contains(stderr, e) {
			t.Errorf("stderr lacks %q:\n%s", e, stderr)
		}
	}
	before := storeStats(t, db)
	if before.Probes != 5 || before.Domains != 2 {
		t.Fatalf("after the first import: %+v", before)
	}
	// The two timed-out lookups of 09:03:00 through 192.0.2.99 are one probe.
	var merged []string
	for _, p := range history(t, db, "flux.example") {
		if p.Vantage == "192.0.2.99:53" {
			for _, o := range p.Observations {
				merged = append(merged, dns.TypeToString[o.QType]+" "+o.Err.String())
			}
		}
	}
	if slices.Sort(merged); !slices.Equal(merged, []string{"A timeout", "AAAA network"}) {
		t.Errorf("merged probe holds %v", merged)
	}
	out, _, _ := fw(t, "", "seeds", "list", "--db", db)
	if !strings.Contains(out, "flux.example\t") || !strings.Contains(out, "sources=import:dig") {
		t.Errorf("seeds list:\n%s", out)
	}

	stdout, _, err = fw(t, "", "import", "--db", db, "--format", "dig", log)
	if err != nil {
		t.Fatal(err)
	}
	second := parseImportSummary(t, stdout)
	if want := (importSummary{lines: 129, probes: 6, observations: 11, duplicate: 6, errors: 2}); second != want {
		t.Errorf("second import: %+v; want %+v", second, want)
	}
	if after := storeStats(t, db); after.Probes != before.Probes || after.AnswerSets != before.AnswerSets || after.Domains != before.Domains {
		t.Errorf("the second import changed the database: %+v, was %+v", after, before)
	}
}

// TestImportMergesIntoStoredProbes: a lookup logged in another file, of the
// same second and resolver as a stored probe, joins that probe; importing
// it again changes nothing.
func TestImportMergesIntoStoredProbes(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	a, aaaa := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "aaaa.jsonl")
	os.WriteFile(a, []byte(`{"host":"flux.example","resolver":["192.0.2.1:53"],"a":["198.51.100.7"],"status_code":"NOERROR","timestamp":"2026-11-27T09:00:01Z"}`+"\n"), 0o644)
	os.WriteFile(aaaa, []byte(`{"host":"flux.example","resolver":["192.0.2.1:53"],"aaaa":["2001:db8::7"],"status_code":"NOERROR","timestamp":"2026-11-27T09:00:01Z"}`+"\n"), 0o644)
	for _, c := range []struct {
		file string
		want importSummary
	}{
		{a, importSummary{lines: 1, probes: 1, observations: 1, new: 1, domains: 1}},
		{aaaa, importSummary{lines: 1, probes: 1, observations: 1, merged: 1}},
		{aaaa, importSummary{lines: 1, probes: 1, observations: 1, duplicate: 1}},
	} {
		stdout, stderr, err := fw(t, "", "import", "--db", db, "--format", "dnsx", c.file)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if got := parseImportSummary(t, stdout); got != c.want {
			t.Errorf("%s: %+v; want %+v", filepath.Base(c.file), got, c.want)
		}
	}
	ps := history(t, db, "flux.example")
	if len(ps) != 1 || len(ps[0].Observations) != 2 {
		t.Fatalf("stored: %+v", ps)
	}

	// Times storage cannot keep (nanoseconds; an observation before its
	// probe's start) compare as storage keeps them: the second import of
	// the same line stores nothing.
	odd := filepath.Join(dir, "odd.jsonl")
	os.WriteFile(odd, []byte(`{"domain":"odd.example","vantage":"v","start":"2026-11-27T09:00:01.000000500Z","observations":[`+
		`{"time":"2026-11-27T09:00:00.999Z","name":"odd.example","qtype":"A","rcode":"NOERROR","rtt_us":3,"answer":[{"name":"odd.example","type":"A","ttl":5,"data":"192.0.2.9"}]},`+
		`{"time":"2026-11-27T09:00:01.000002999Z","name":"odd.example","qtype":"AAAA","rcode":"NOERROR","flags":["passive","ra"],"rtt_us":3}]}`+"\n"), 0o644)
	for _, want := range []importSummary{
		{lines: 1, probes: 1, observations: 2, new: 1, domains: 1},
		{lines: 1, probes: 1, observations: 2, duplicate: 1},
	} {
		stdout, stderr, err := fw(t, "", "import", "--db", db, "--format", "jsonl", odd)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if got := parseImportSummary(t, stdout); got != want {
			t.Errorf("odd.jsonl: %+v; want %+v", got, want)
		}
	}
}

// TestImportPassiveDNSFromGzippedStdin imports passive DNS from stdin,
// compressed: the records are stored as answered lookups through the
// sensor, at their first and last times, flagged passive.
func TestImportPassiveDNSFromGzippedStdin(t *testing.T) {
	text, err := os.ReadFile("../../importer/testdata/cof.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(text)
	zw.Close()
	db := filepath.Join(t.TempDir(), "fw.db")
	stdout, stderr, err := fw(t, gz.String(), "import", "--db", db, "--format", "cof", "--source", "circl", "-")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if got := parseImportSummary(t, stdout); got.new != 7 || got.errors != 6 || got.skipped != 1 {
		t.Errorf("summary %+v", got)
	}
	if !strings.Contains(stderr, "stdin:6: rdata \"300.1.2.3\" is not an A address") {
		t.Errorf("stderr:\n%s", stderr)
	}
	ps := history(t, db, "flux.example")
	var got []string
	for _, p := range ps {
		for _, o := range p.Observations {
			if o.Err != obs.OK || o.Rcode != 0 || o.Flags != obs.FlagPassive {
				t.Errorf("passive observation stored as %s [%s]: %+v", o.Err, o.Flags, o)
			}
			got = append(got, fmt.Sprintf("%s %s %s %d", p.Start.Format(time.TimeOnly), p.Vantage, dns.TypeToString[o.QType], len(o.Answer)))
		}
	}
	want := []string{"09:00:01 pdns:circl NS 1", "09:00:01 pdns:circl-1 A 2", "10:00:01 pdns:circl-1 A 2"}
	if slices.Sort(got); !slices.Equal(got, want) {
		t.Errorf("stored %q; want %q", got, want)
	}
}

func TestImportUsageAndLockErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	for _, args := range [][]string{
		{"import", "--db", db, "x"},                                            // no format
		{"import", "--db", db, "--format", "bind", "x"},                        // unknown format
		{"import", "--db", db, "--format", "dig"},                              // no file
		{"import", "--db", db, "--format", "dig", "--tz", "Mars/Olympus", "x"}, // bad zone
		{"export-observations", "--db", db, "--format", "csv"},
		{"export-observations", "--db", db, "--since", "last week"},
	} {
		if _, _, err := fw(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v; want a usage error", args, err)
		}
	}
	if _, _, err := fw(t, "", "import", "--db", db, "--format", "dig", filepath.Join(dir, "missing.log")); err == nil || errors.Is(err, errUsage) {
		t.Errorf("missing file: %v", err)
	}
	// A file of which no line reads (here the JSON form show --json had
	// before it printed the jsonl one) fails the import.
	oldShow := filepath.Join(dir, "show.jsonl")
	os.WriteFile(oldShow, []byte(`{"domain":"flux.test","vantage":"127.0.0.1:5301","start":"2026-03-01T12:00:00Z","observations":[`+
		`{"time":"2026-03-01T12:00:00.002Z","name":"flux.test","qtype":"A","rcode":"NOERROR","flags":"ra","rtt_ms":1.5}]}`+"\n"), 0o644)
	stdout, stderr, err := fw(t, "", "import", "--db", db, "--format", "jsonl", oldShow)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "no line read as jsonl (1 rejected)") ||
		!strings.Contains(stderr, "show.jsonl:1: ") || parseImportSummary(t, stdout).errors != 1 {
		t.Errorf("a file of no readable line: %v\n%s%s", err, stdout, stderr)
	}
	s, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, args := range [][]string{
		{"import", "--db", db, "--format", "dig", "../../importer/testdata/dig.log"},
		{"export-observations", "--db", db},
	} {
		if _, _, err := fw(t, "", args...); !errors.Is(err, storage.ErrLocked) {
			t.Errorf("%s on a database in use: %v", args[0], err)
		}
	}
}

// TestExportObsOptions exports one domain, from a time on, gzip-compressed,
// and checks that every line imports.
func TestExportObsOptions(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	if _, stderr, err := fw(t, "", "import", "--db", db, "--format", "zdns", "../../importer/testdata/zdns.jsonl"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	out := filepath.Join(dir, "flux.jsonl.gz")
	stdout, _, err := fw(t, "", "export-observations", "--db", db, "--domain", "Flux.Example.", "--since", "2026-11-27T09:05:00Z", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "export-observations: 5 probes, 8 observations of 1 domains written to " + out + "\n"; stdout != want {
		t.Errorf("stdout %q; want %q", stdout, want)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(zr)
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), text)
	}
	for _, l := range lines {
		var p struct {
			Domain string    `json:"domain"`
			Start  time.Time `json:"start"`
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil || p.Domain != "flux.example" || p.Start.Before(time.Date(2026, 11, 27, 9, 5, 0, 0, time.UTC)) {
			t.Errorf("line %s: %v", l, err)
		}
	}
	// Everything, to stdout; an unknown domain is an error.
	stdout, _, err = fw(t, "", "export-observations", "--db", db)
	if n := strings.Count(stdout, "\n"); err != nil || n != 12 { // the probes of importer/testdata/zdns.jsonl
		t.Errorf("export of everything: %v, %d lines", err, n)
	}
	if _, _, err := fw(t, "", "export-observations", "--db", db, "--domain", "unknown.example"); !errors.Is(err, storage.ErrUnknownDomain) {
		t.Errorf("unknown domain: %v", err)
	}
}

// TestReplayClassifiesIdentically crawls the simulated world, exports the
// observations as jsonl, imports them into a fresh database, and
// classifies both: every domain gets the same verdict, features and all.
func TestReplayClassifiesIdentically(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	world, err := simnet.Start(ctx, simnet.Config{Seed: 11, Speed: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	cfg := config.Default()
	if err := eval.WorldFiles(world, dir, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DB = filepath.Join(dir, "crawled.db")
	cfg.Resolvers, cfg.QPS, cfg.Workers, cfg.Timeout = world.Vantages(), 0, 16, time.Second
	cfg.ParentPort = world.ParentPort()
	store, err := storage.Open(cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range world.Domains() {
		names = append(names, d.Name)
	}
	if _, err := store.AddDomains(names, "simnet", world.Now()); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := crawl(ctx, cfg, store, crawlPlan{rounds: 5, interval: 3 * time.Minute, now: world.Now, sleep: world.Sleep}, quiet); err != nil {
		t.Fatal(err)
	}
	store.Close()
	now := world.Now()

	export := filepath.Join(dir, "observations.jsonl")
	if _, stderr, err := fw(t, "", "export-observations", "--db", cfg.DB, "--format", "jsonl", "--out", export); err != nil {
		t.Fatalf("export-observations: %v\n%s", err, stderr)
	}
	replayed := filepath.Join(dir, "replayed.db")
	stdout, stderr, err := fw(t, "", "import", "--db", replayed, "--format", "jsonl", export)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	sum := parseImportSummary(t, stdout)
	crawled := storeStats(t, cfg.DB)
	if sum.errors != 0 || sum.new != crawled.Probes || sum.domains != len(names) || storeStats(t, replayed).Probes != crawled.Probes {
		t.Fatalf("import %+v of %d probes, %d domains:\n%s", sum, crawled.Probes, len(names), stderr)
	}

	// Imported back into the database it came from, it is all there.
	stdout, stderr, err = fw(t, "", "import", "--db", cfg.DB, "--format", "jsonl", export)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if back := parseImportSummary(t, stdout); back.duplicate != crawled.Probes || back.new+back.merged+back.domains != 0 {
		t.Errorf("importing the export into its own database: %+v", back)
	}

	verdicts := func(db string) map[string]string {
		s, err := storage.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c, err := newClassifier(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		if _, err := c.Run(ctx, s, cfg.Window, now, func(v classify.Verdict) error {
			b, err := json.Marshal(v)
			out[v.Domain] = string(b)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := verdicts(cfg.DB), verdicts(replayed)
	if len(want) < len(names) {
		t.Fatalf("%d verdicts for %d domains", len(want), len(names))
	}
	kinds := map[string]int{}
	for name := range want {
		if got[name] != want[name] {
			t.Errorf("%s:\n crawled  %s\n replayed %s", name, want[name], got[name])
		}
		var v classify.Verdict
		json.Unmarshal([]byte(want[name]), &v)
		kinds[v.Verdict]++
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: a verdict only after the replay: %s", name, got[name])
		}
	}
	// The replay means something only if the crawl found flux to replay.
	if kinds[classify.SingleFlux] == 0 || kinds[classify.DoubleFlux] == 0 || kinds[classify.Benign] == 0 {
		t.Errorf("verdicts of the crawl: %v", kinds)
	}
}

// digRun writes one dig run as dig 9.18 prints it.
func digRun(w io.Writer, name string, at time.Time, ttl int, addrs []string) {
	fmt.Fprintf(w, "\n; <<>> DiG 9.18.18-0ubuntu0.22.04.2-Ubuntu <<>> %s\n;; global options: +cmd\n;; Got answer:\n", name)
	fmt.Fprintf(w, ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: %d\n", at.Unix()%65536)
	fmt.Fprintf(w, ";; flags: qr rd ra; QUERY: 1, ANSWER: %d, AUTHORITY: 0, ADDITIONAL: 1\n\n", len(addrs))
	fmt.Fprintf(w, ";; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 65494\n;; QUESTION SECTION:\n;%s.\t\t\tIN\tA\n\n;; ANSWER SECTION:\n", name)
	for _, a := range addrs {
		fmt.Fprintf(w, "%s.\t\t%d\tIN\tA\t%s\n", name, ttl, a)
	}
	fmt.Fprintf(w, "\n;; Query time: %d msec\n;; SERVER: 127.0.0.53#53(127.0.0.53) (UDP)\n", 5+at.Minute()%20)
	fmt.Fprintf(w, ";; WHEN: %s\n;; MSG SIZE  rcvd: %d\n", at.Format("Mon Jan 02 15:04:05 MST 2006"), 40+16*len(addrs))
}

// TestImportDigLogOfFluxAndRoundRobin is issue 9's test: an hour of dig
// runs, every TTL (180 s), of a flux domain answering 5 of 24 addresses in
// 24 networks (distinct /16s, no ASN table), and of a round-robin domain
// answering its 4 addresses in turn, is classified single-flux and benign.
func TestImportDigLogOfFluxAndRoundRobin(t *testing.T) {
	var pool []string
	for i := range 24 {
		pool = append(pool, fmt.Sprintf("%d.%d.%d.%d", 23+7*i, 11+3*i, 5+i, 10+i))
	}
	roundRobin := []string{"203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13"}
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	var log bytes.Buffer
	for k := range 20 {
		at := start.Add(time.Duration(k) * 180 * time.Second)
		var flux []string
		for j := range 5 {
			flux = append(flux, pool[(5*k+j)%len(pool)])
		}
		digRun(&log, "flux.example", at, 180, flux)
		rotated := append(slices.Clone(roundRobin[k%4:]), roundRobin[:k%4]...)
		digRun(&log, "shop.example", at.Add(7*time.Second), 300, rotated)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "lookups.log")
	os.WriteFile(file, log.Bytes(), 0o644)
	db := filepath.Join(dir, "fw.db")
	stdout, stderr, err := fw(t, "", "import", "--db", db, "--format", "dig", file)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if got := parseImportSummary(t, stdout); got.new != 40 || got.errors != 0 || got.domains != 2 {
		t.Fatalf("import: %+v\n%s", got, stderr)
	}

	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c, err := newClassifier(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	// The window ends just after the log: it follows the lookups' own
	// times, years ago or not.
	end := start.Add(time.Hour + time.Minute)
	verdicts := map[string]classify.Verdict{}
	if _, err := c.Run(context.Background(), store, 2*time.Hour, end, func(v classify.Verdict) error {
		verdicts[v.Domain] = v
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if v := verdicts["flux.example"]; v.Verdict != classify.SingleFlux || v.Features.Addresses != 24 || v.Features.Networks != 24 || v.Features.MinTTL != 180 {
		t.Errorf("flux.example: %s %+v: %s", v.Verdict, v.Features, v.Evidence)
	}
	if v := verdicts["shop.example"]; v.Verdict != classify.Benign || v.Features.Rounds != 20 {
		t.Errorf("shop.example: %s: %s", v.Verdict, v.Evidence)
	}
}
