package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
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
