package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/feed"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/storage"
)

// A flux domain delisted by hand, or whose listing expired, is not listed:
// the jsonl and csv exports without --all leave it out, and the counts of
// export and status (without a daemon) do not count it.
func TestDelistedAndExpiredFluxIsNotListed(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fw.db")
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	listing := &classify.Listing{FirstListed: now.Add(-time.Hour), LastConfirmed: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
	var records []storage.VerdictRecord
	for _, d := range []struct {
		name   string
		listed bool
	}{{"delisted.test", true}, {"expired.test", false}, {"listed.test", true}} {
		v := classify.Verdict{Domain: d.name, Verdict: classify.SingleFlux, Confidence: 0.9, ClassifiedAt: now,
			Features: classify.Features{Addresses: 40, Networks: 9}}
		r := storage.VerdictRecord{Domain: d.name}
		if d.listed {
			v.Listing = listing
			if r.Listed, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		if r.Full, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
		records = append(records, r)
	}
	if err := store.PutVerdicts(records); err != nil {
		t.Fatal(err)
	}
	store.Close()
	// The full record of delisted.test still carries its listing.
	if _, stderr, err := fw(t, "", "blocklist", "delist", "--db", db, "delisted.test"); err != nil {
		t.Fatalf("delist: %v\n%s", err, stderr)
	}

	dir := t.TempDir()
	for _, format := range []string{"jsonl", "csv", "domains"} {
		out := filepath.Join(dir, format)
		stdout, stderr, err := fw(t, "", "export", "--db", db, "--format", format, "--out", out)
		if err != nil {
			t.Fatalf("export %s: %v\n%s", format, err, stderr)
		}
		if !strings.Contains(stdout, "export: 1 listed domains") {
			t.Errorf("export %s counts: %s", format, stdout)
		}
		b, _ := os.ReadFile(out)
		if got := string(b); !strings.Contains(got, "listed.test") || strings.Contains(got, "delisted.test") || strings.Contains(got, "expired.test") {
			t.Errorf("export %s holds more than listed.test:\n%s", format, got)
		}
	}
	out := filepath.Join(dir, "all.jsonl")
	if _, stderr, err := fw(t, "", "export", "--db", db, "--format", "jsonl", "--all", "--out", out); err != nil {
		t.Fatalf("export --all: %v\n%s", err, stderr)
	}
	b, _ := os.ReadFile(out)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v classify.Verdict
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		if v.Listed() != (v.Domain == "listed.test") {
			t.Errorf("export --all: %s listing %+v", v.Domain, v.Listing)
		}
	}
	stdout, stderr, err := fw(t, "", "status", "--db", db)
	if err != nil || !strings.Contains(stdout, "single-flux 3,") || !strings.Contains(stdout, "listed 1\n") {
		t.Errorf("status: %v\n%s%s", err, stdout, stderr)
	}
}

// classify without IP tables lists the world's CDNs (their many /16s look
// like many networks); classify again with the ASN table, on the same
// measurements, clears them at once: the listed set is that of a run with
// the table alone, and blocklist history says a benign verdict cleared them.
func TestClassifyWithTablesClearsWhatItListedWithout(t *testing.T) {
	w := startWorld(t, 7)
	db, vantages := seedWorld(t, w)
	args := append([]string{"crawl", "--db", db, "--qps", "0", "--rounds", "3", "--interval", "2s", "--log-level", "warn"}, vantages...)
	if _, stderr, err := fw(t, "", args...); err != nil {
		t.Fatalf("crawl: %v\n%s", err, stderr)
	}
	dir := t.TempDir()
	asn := filepath.Join(dir, "asn.tsv")
	f, _ := os.Create(asn)
	if err := w.WriteASNTable(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tablesOnly := filepath.Join(dir, "tables-only.db")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tablesOnly, b, 0o644); err != nil {
		t.Fatal(err)
	}
	listed := func(db string) []string {
		t.Helper()
		out, stderr, err := fw(t, "", "export", "--db", db, "--format", "domains")
		if err != nil {
			t.Fatalf("export: %v\n%s", err, stderr)
		}
		return strings.Fields(out)
	}
	// The window ends at each domain's last probe: every run judges the
	// same measurements.
	if _, stderr, err := fw(t, "", "classify", "--db", db, "--list-without-ip-tables"); err != nil {
		t.Fatalf("classify: %v\n%s", err, stderr)
	}
	without := listed(db)
	// An exploratory dry run, on another window and with the table,
	// prints verdicts but changes nothing stored.
	all := func() string {
		t.Helper()
		out, stderr, err := fw(t, "", "export", "--db", db, "--format", "jsonl", "--all")
		if err != nil {
			t.Fatalf("export: %v\n%s", err, stderr)
		}
		return out
	}
	before := all()
	out, stderr, err := fw(t, "", "classify", "--db", db, "--dry-run", "--window", "1ns", "--asn-db", asn)
	if err != nil || !strings.Contains(out, "insufficient-data") || !strings.Contains(out, "dry run: no verdict stored, no listing changed") {
		t.Fatalf("classify --dry-run: %v\n%s%s", err, out, stderr)
	}
	if after := all(); after != before {
		t.Fatalf("classify --dry-run changed the stored verdicts:\n%s\nthen\n%s", before, after)
	}
	if _, stderr, err := fw(t, "", "classify", "--db", db, "--asn-db", asn); err != nil {
		t.Fatalf("classify --asn-db: %v\n%s", err, stderr)
	}
	if _, stderr, err := fw(t, "", "classify", "--db", tablesOnly, "--asn-db", asn); err != nil {
		t.Fatalf("classify --asn-db: %v\n%s", err, stderr)
	}
	with, want := listed(db), listed(tablesOnly)
	if !slices.Equal(with, want) || len(want) == 0 {
		t.Fatalf("listed after classify with the table: %v; classify with the table alone lists %v", with, want)
	}
	// blocklist list --json prints the features of the verdicts the
	// listings rest on, and their scores read as ones.
	out, _, err = fw(t, "", "blocklist", "list", "--json", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(with) {
		t.Fatalf("blocklist list --json: %d lines for %d listed", len(lines), len(with))
	}
	for _, line := range lines {
		var v classify.Verdict
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		f := v.Features
		if f.Addresses == 0 || f.Networks == 0 || f.Rounds == 0 || f.FirstSeen.IsZero() || f.LastSeen.IsZero() || f.HolzScore == 0 ||
			!strings.Contains(v.Evidence, fmt.Sprintf("%d addresses", f.Addresses)) || v.Score < 0.5 || v.Score > 1 || !v.Listed() {
			t.Errorf("blocklist list --json: %s", line)
		}
	}
	var cleared []string
	for _, name := range without {
		if slices.Contains(with, name) {
			continue
		}
		cleared = append(cleared, name)
		out, _, err := fw(t, "", "blocklist", "history", "--db", db, name)
		if err != nil || !strings.Contains(out, "cleared") || !strings.Contains(out, "benign (confidence") ||
			!strings.Contains(out, "reason: benign on the evidence it was listed on") {
			t.Errorf("history of %s: %v\n%s", name, err, out)
		}
	}
	if len(cleared) == 0 {
		t.Fatalf("classify without tables listed %v, no more than with them: the test shows nothing", without)
	}
	t.Logf("cleared by the table: %v", cleared)
}

// `ipdb update` fetches the tables from a local server into the directory
// beside the database; the loader classify, show and the daemon use then
// finds them without --asn-db, and status says how old they are. A corrupt
// download fails and leaves them in use.
func TestIPDBUpdateFeedsClassify(t *testing.T) {
	files := map[string]string{}
	for _, name := range []string{"asn-ipv4.csv", "asn-ipv6.csv", "asn-country-ipv4.csv", "asn-country-ipv6.csv"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "ipmeta", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	var corrupt atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[filepath.Base(r.URL.Path)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if corrupt.Load() && strings.HasSuffix(r.URL.Path, "asn-ipv6.csv") {
			body = "this is not a table\n"
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	if _, stderr, err := fw(t, "flux.test\n", "seeds", "add", "--db", db, "-"); err != nil {
		t.Fatalf("seeds add: %v\n%s", err, stderr)
	}
	out, stderr, err := fw(t, "", "ipdb", "update", "--db", db, "--source", srv.URL)
	if err != nil || !strings.Contains(out, "ipdb: tables from "+srv.URL+"/ in use in "+filepath.Join(dir, "ipdb")) {
		t.Fatalf("ipdb update: %v\n%s%s", err, out, stderr)
	}
	out, _, err = fw(t, "", "status", "--db", db)
	if err != nil || !strings.Contains(out, "ip tables: "+filepath.Join(dir, "ipdb")+", fetched ") {
		t.Fatalf("status after ipdb update: %v\n%s", err, out)
	}
	corrupt.Store(true)
	_, stderr, err = fw(t, "", "ipdb", "update", "--db", db, "--source", srv.URL)
	if err == nil || !strings.Contains(err.Error()+stderr, "does not parse") || !strings.Contains(err.Error()+stderr, "are unchanged") {
		t.Fatalf("corrupt ipdb update: %v\n%s", err, stderr)
	}
	// The tables in use still load: a lookup through classify's loader.
	cfg := config.Default()
	cfg.DB = db
	meta, err := ipmeta.FromConfig(cfg)
	if err != nil || !meta.HasASN() {
		t.Fatalf("tables after a failed update: %v, has ASN %v", err, meta.HasASN())
	}
	if info, ok := meta.Lookup(netip.MustParseAddr("1.0.0.1")); !ok || info.ASN != 13335 {
		t.Fatalf("1.0.0.1: %+v %v", info, ok)
	}
}

// An rpz export never hands out a serial at or below that of the file it
// replaces, whatever the database remembers (restored from a backup, or
// moved): the daemon's publishes and `export` alike go through it.
func TestExportKeepsTheSerialAboveTheFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	if _, stderr, err := fw(t, "flux.test\n", "seeds", "add", "--db", db, "-"); err != nil {
		t.Fatalf("seeds add: %v\n%s", err, stderr)
	}
	out := filepath.Join(dir, "fluxwatch.rpz")
	const old = 4000000000
	zone := fmt.Sprintf("$ORIGIN fluxwatch.rpz.\n@ 300 IN SOA localhost. hostmaster.localhost. %d 3600 600 604800 60\n@ 300 IN NS localhost.\n", old)
	if err := os.WriteFile(out, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := fw(t, "", "export", "--db", db, "--format", "rpz", "--out", out); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	if got, err := feed.ReadZoneSerial(out, "fluxwatch.rpz"); err != nil || got <= old {
		t.Fatalf("serial %d after an export over a file at %d (%v); want above it", got, uint32(old), err)
	}
}
