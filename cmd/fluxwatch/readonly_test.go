package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// smallDB writes a database with two domains, their probes over an hour,
// verdicts (from classify) and one publish record.
func smallDB(t *testing.T, path string) {
	t.Helper()
	s, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour).Truncate(time.Second)
	if _, err := s.AddDomains([]string{"flux.test", "calm.test"}, "unit", now); err != nil {
		t.Fatal(err)
	}
	var ps []obs.Probe
	for i := range 30 {
		at := now.Add(time.Duration(i) * time.Minute)
		for _, d := range []string{"flux.test", "calm.test"} {
			addr := "192.0.2.1"
			if d == "flux.test" {
				addr = fmt.Sprintf("%d.%d.0.1", 11+i, i)
			}
			ps = append(ps, obs.Probe{Domain: d, Vantage: "127.0.0.1:53", Start: at, Observations: []obs.Observation{{
				Time: at, Vantage: "127.0.0.1:53", Name: d, QType: dns.TypeA, Flags: obs.FlagRA,
				Answer: []obs.Record{{Name: d, Type: dns.TypeA, TTL: 30, Data: addr}},
			}}})
		}
	}
	if _, err := s.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordPublish(now); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, stderr, err := fw(t, "", "classify", "--db", path); err != nil {
		t.Fatalf("classify: %v\n%s", err, stderr)
	}
}

// readCommands are the commands that only read, with the arguments that
// make each one read something.
func readCommands(db, outDir string) [][]string {
	return [][]string{
		{"show", "--db", db, "flux.test"},
		{"show", "--db", db, "--json", "flux.test"},
		{"status", "--db", db},
		{"status", "--db", db, "--json"},
		{"seeds", "list", "--db", db, "--all"},
		{"networks", "--db", db},
		{"networks", "--db", db, "--json"},
		{"blocklist", "list", "--db", db},
		{"blocklist", "diff", "--db", db},
		{"blocklist", "history", "--db", db, "flux.test"},
		{"export", "--db", db, "--format", "domains", "--out", "-"},
		{"export", "--db", db, "--format", "jsonl", "--out", filepath.Join(outDir, "verdicts.jsonl")},
		{"export-observations", "--db", db},
		{"report", "--db", db, "--out", filepath.Join(outDir, "report.html")},
		{"db", "check", "--db", db},
		{"classify", "--dry-run", "--db", db},
	}
}

// Every read command works on a database file that is read-only in a
// read-only directory, and leaves it byte for byte as it was.
func TestReadCommandsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	dbDir := filepath.Join(dir, "db")
	os.Mkdir(dbDir, 0o755)
	db := filepath.Join(dbDir, "fw.db")
	smallDB(t, db)
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(db, 0o444)
	os.Chmod(dbDir, 0o555)
	t.Cleanup(func() { os.Chmod(dbDir, 0o755) })
	for _, args := range readCommands(db, dir) {
		stdout, stderr, err := fw(t, "", args...)
		if err != nil {
			t.Errorf("%v: %v\n%s", args, err, stderr)
			continue
		}
		if args[0] == "show" && !strings.Contains(stdout, "flux.test") {
			t.Errorf("%v printed %q", args, stdout)
		}
	}
	after, _ := os.ReadFile(db)
	if !bytes.Equal(before, after) {
		t.Fatalf("read commands changed the database (%d bytes before, %d after)", len(before), len(after))
	}
	if entries, _ := os.ReadDir(dbDir); len(entries) != 1 {
		t.Errorf("the database's directory holds %v; want the database alone", entries)
	}
}

// Every command but those that create a database fails on a missing one
// with "no database at PATH" and creates nothing.
func TestMissingDatabaseIsAnError(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "missing.db")
	out := t.TempDir()
	cmds := append(readCommands(db, out),
		[]string{"classify", "--db", db},
		[]string{"seeds", "remove", "--db", db, "flux.test"},
		[]string{"blocklist", "delist", "--db", db, "flux.test"},
		[]string{"blocklist", "relist", "--db", db, "flux.test"},
		[]string{"export", "--db", db, "--format", "rpz", "--out", "-"},
		[]string{"db", "compact", "--db", db},
	)
	for _, args := range cmds {
		_, _, err := fw(t, "", args...)
		if !errors.Is(err, storage.ErrNoDatabase) || err.Error() != "no database at "+db {
			t.Errorf("%v: %v; want %q", args, err, "no database at "+db)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%v created %v", args, entries)
		}
	}
	// The commands that add data create it.
	if _, _, err := fw(t, "flux.test\n", "seeds", "add", "--db", db, "-"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatal(err)
	}
}

// The read commands, run as the real binary by a user who may not write
// the database (uid and gid 65534; the tests run as root, for whom
// permission bits stop nothing), work and change nothing.
func TestReadCommandsAsAnotherUser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the binary as another user")
	}
	dir := t.TempDir()
	// Every user may enter the test's directories and run the binary.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "fluxwatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dbDir, outDir := filepath.Join(dir, "db"), filepath.Join(dir, "out")
	os.Mkdir(dbDir, 0o755)
	os.Mkdir(outDir, 0o777)
	os.Chmod(outDir, 0o777) // past the umask
	db := filepath.Join(dbDir, "fw.db")
	smallDB(t, db)
	before, _ := os.ReadFile(db)
	os.Chmod(db, 0o444)
	os.Chmod(dbDir, 0o555)
	t.Cleanup(func() { os.Chmod(dbDir, 0o755) })
	asNobody := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = outDir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The condition is real: a command that writes is refused.
	if out, err := asNobody("seeds", "remove", "--db", db, "flux.test"); err == nil || !strings.Contains(out, "permission denied") {
		t.Fatalf("seeds remove as uid 65534: %v\n%s", err, out)
	}
	for _, args := range readCommands(db, outDir) {
		if out, err := asNobody(args...); err != nil {
			t.Errorf("%v as uid 65534: %v\n%s", args, err, out)
		}
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Fatal("the read commands changed the database")
	}
	if entries, _ := os.ReadDir(dbDir); len(entries) != 1 {
		t.Errorf("the database's directory holds %v", entries)
	}
}
