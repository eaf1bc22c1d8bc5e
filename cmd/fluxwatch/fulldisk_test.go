package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/storage"
)

// smallDisk mounts a tmpfs of size bytes for one test, or skips the test
// where mounting is not allowed (it needs root).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// listDomains stores flux verdicts for n domains named prefix-N.test.
func listDomains(t *testing.T, db string, prefix string, n int) {
	t.Helper()
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var names []string
	var recs []storage.VerdictRecord
	for i := range n {
		now := time.Now().UTC()
		v := classify.Verdict{Domain: fmt.Sprintf("%s-%d.test", prefix, i), Verdict: classify.SingleFlux, Confidence: 0.9, ClassifiedAt: now,
			Listing: &classify.Listing{FirstListed: now, LastConfirmed: now, ExpiresAt: now.Add(classify.DefaultExpiry)}}
		b, _ := json.Marshal(v)
		names = append(names, v.Domain)
		recs = append(recs, storage.VerdictRecord{Domain: v.Domain, Full: b, Listed: b})
	}
	if _, err := store.AddDomains(names, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := store.PutVerdicts(recs); err != nil {
		t.Fatal(err)
	}
}

// A publish that runs out of disk fails loudly, leaves the previous list
// whole where it was and leaves no temporary file behind.
func TestExportOnAFullDiskKeepsThePreviousList(t *testing.T) {
	disk := smallDisk(t, 64<<10)
	db := filepath.Join(t.TempDir(), "fw.db")
	out := filepath.Join(disk, "blocklist.rpz")
	listDomains(t, db, "first", 20)
	if _, stderr, err := fw(t, "", "export", "--db", db, "--format", "rpz", "--out", out); err != nil {
		t.Fatalf("first export: %v\n%s", err, stderr)
	}
	before, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(before), "first-7.test") {
		t.Fatalf("first export: %v\n%s", err, before)
	}
	// Ten thousand more names: far more than the 64 KiB disk holds.
	listDomains(t, db, "more", 10000)
	_, stderr, err := fw(t, "", "export", "--db", db, "--format", "rpz", "--out", out)
	if err == nil || !strings.Contains(stderr+err.Error(), "no space left on device") {
		t.Fatalf("export to a full disk: err %v\n%s", err, stderr)
	}
	after, _ := os.ReadFile(out)
	if string(after) != string(before) {
		t.Fatalf("the previous list changed (%d bytes, was %d)", len(after), len(before))
	}
	entries, _ := os.ReadDir(disk)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files left on the disk: %v", names)
	}
}
