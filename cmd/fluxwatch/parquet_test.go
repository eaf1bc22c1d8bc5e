package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// export-observations --format parquet writes the crawl's history as daily
// Parquet files (the columnar package's tests read them back with an
// independent reader) and says how many rows; it needs a directory.
func TestExportObservationsParquet(t *testing.T) {
	w := startWorld(t, 19)
	db, vantages := seedWorld(t, w)
	if _, stderr, err := fw(t, "", append([]string{"crawl", "--db", db, "--qps", "0", "--delegation=false", "--log-level", "warn"}, vantages...)...); err != nil {
		t.Fatalf("crawl: %v\n%s", err, stderr)
	}
	dir := filepath.Join(t.TempDir(), "obs")
	_, stderr, err := fw(t, "", "export-observations", "--db", db, "--format", "parquet", "--out", dir)
	m := regexp.MustCompile(`(\d+) rows in (\d+) files`).FindStringSubmatch(stderr)
	if err != nil || m == nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	rows, _ := strconv.Atoi(m[1])
	files, _ := filepath.Glob(filepath.Join(dir, "date=*", "*.parquet"))
	if rows < len(w.Domains()) || len(files) == 0 || m[2] != strconv.Itoa(len(files)) {
		t.Fatalf("%s rows in %s files; on disk %v", m[1], m[2], files)
	}
	if _, _, err := fw(t, "", "export-observations", "--db", db, "--format", "parquet"); err == nil {
		t.Fatal("parquet to standard output was accepted")
	}
}
