package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fluxwatch/fluxwatch/schema"
)

// compileSchema compiles one of the repository's JSON Schemas, with the
// others beside it for the references between them.
func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, _ := fs.Glob(schema.FS, "*.schema.json")
	for _, f := range files {
		b, _ := fs.ReadFile(schema.FS, f)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err == nil {
			err = c.AddResource("file:///schema/"+f, doc)
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	s, err := c.Compile("file:///schema/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validLines checks every line of out against the schema and returns how
// many there were.
func validLines(t *testing.T, s *jsonschema.Schema, what, out string) int {
	t.Helper()
	n := 0
	for line := range strings.Lines(out) {
		n++
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
		if err == nil {
			err = s.Validate(v)
		}
		if err != nil {
			t.Fatalf("%s, line %d: %v\n%s", what, n, err, line)
		}
	}
	return n
}

// The JSON that the commands write follows the schemas in schema/, and
// observations have one form: show --json prints what export-observations
// writes, and it imports into a fresh database as the same probes.
func TestJSONOutputFollowsTheSchemas(t *testing.T) {
	w := startWorld(t, 7)
	db, vantages := seedWorld(t, w)
	dir := t.TempDir()
	// Delegation on: the parent zone's referrals are observations too.
	args := append([]string{"crawl", "--db", db, "--qps", "0", "--rounds", "3", "--interval", "2s", "--quiet", "--log-level", "warn",
		"--parent-port", strconv.Itoa(w.ParentPort())}, vantages...)
	if _, stderr, err := fw(t, "", args...); err != nil {
		t.Fatalf("crawl: %v\n%s", err, stderr)
	}
	asn, allow := filepath.Join(dir, "asn.tsv"), filepath.Join(dir, "allow.txt")
	for path, write := range map[string]func(f *os.File) error{
		asn: func(f *os.File) error { return w.WriteASNTable(f) }, allow: func(f *os.File) error { return w.WriteAllowlist(f) }} {
		f, err := os.Create(path)
		if err == nil {
			err = write(f)
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := fw(t, "", args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return stdout
	}

	verdicts := compileSchema(t, schema.Verdict)
	out := run("classify", "--db", db, "--json", "--asn-db", asn, "--allowlist", allow)
	if n := validLines(t, verdicts, "classify --json", out); n != len(w.Domains()) {
		t.Errorf("classify --json: %d verdicts of %d domains", n, len(w.Domains()))
	}
	if n := validLines(t, verdicts, "export --format jsonl --all", run("export", "--db", db, "--format", "jsonl", "--all")); n != len(w.Domains()) {
		t.Errorf("export --format jsonl --all: %d verdicts of %d domains", n, len(w.Domains()))
	}
	listed := validLines(t, verdicts, "export --format jsonl", run("export", "--db", db, "--format", "jsonl"))
	if n := validLines(t, compileSchema(t, schema.Listing), "blocklist list --json", run("blocklist", "list", "--db", db, "--json")); n == 0 || n != listed {
		t.Errorf("blocklist list --json: %d listings, export: %d listed", n, listed)
	}

	observations := compileSchema(t, schema.Observation)
	exported := run("export-observations", "--db", db)
	validLines(t, observations, "export-observations", exported)
	var shown strings.Builder
	for _, d := range w.Domains() { // in name order, as export-observations goes
		shown.WriteString(run("show", "--db", db, "--json", d.Name))
	}
	validLines(t, observations, "show --json", shown.String())
	if shown.String() != exported {
		t.Fatal("show --json of every domain differs from export-observations")
	}
	shownFile, fresh := filepath.Join(dir, "shown.jsonl"), filepath.Join(dir, "fresh.db")
	if err := os.WriteFile(shownFile, []byte(shown.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum := parseImportSummary(t, run("import", "--db", fresh, "--format", "jsonl", shownFile)); sum.errors != 0 || sum.new == 0 {
		t.Fatalf("import of show --json: %+v", sum)
	}
	for _, d := range w.Domains() {
		if got, want := history(t, fresh, d.Name), history(t, db, d.Name); len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: imported from show --json\n%+v\nwant\n%+v", d.Name, got, want)
		}
	}
}
