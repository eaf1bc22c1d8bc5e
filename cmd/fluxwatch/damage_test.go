package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// manyProbesDB is smallDB with six more domains of 500 probes each: the
// probes bucket spans leaf pages under a branch page.
func manyProbesDB(t *testing.T, path string) {
	t.Helper()
	smallDB(t, path)
	s, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var names []string
	for i := range 6 {
		names = append(names, fmt.Sprintf("d%d.test", i))
	}
	now := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if _, err := s.AddDomains(names, "unit", now); err != nil {
		t.Fatal(err)
	}
	var ps []obs.Probe
	for i := range 500 {
		at := now.Add(time.Duration(i) * 10 * time.Second)
		for j, d := range names {
			ps = append(ps, obs.Probe{Domain: d, Vantage: "127.0.0.1:53", Start: at, Observations: []obs.Observation{{
				Time: at, Vantage: "127.0.0.1:53", Name: d, QType: dns.TypeA, Flags: obs.FlagRA,
				Answer: []obs.Record{{Name: d, Type: dns.TypeA, TTL: 30, Data: fmt.Sprintf("10.%d.%d.1", j, i%200)}},
			}}})
		}
	}
	if _, err := s.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
}

func pagesOf(t *testing.T, path, kind, bucket string) []storage.FilePage {
	t.Helper()
	all, err := storage.FilePages(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []storage.FilePage
	for _, p := range all {
		if p.Kind == kind && (bucket == "" || p.Bucket == bucket) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s page of bucket %q", kind, bucket)
	}
	return out
}

// firstValue returns the offset in b of the first value on leaf page id.
func firstValue(b []byte, id uint64) int64 {
	elem := int64(id)*int64(os.Getpagesize()) + 16
	pos, ksize := binary.LittleEndian.Uint32(b[elem+4:]), binary.LittleEndian.Uint32(b[elem+8:])
	return elem + int64(pos) + int64(ksize)
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fluxwatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBin runs the binary and returns its output and exit code.
func runBin(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Stdin = strings.NewReader("x.test\n")
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// Every command on a damaged file, whatever the damage (cuts at several
// sizes, flipped bytes in the meta, freelist, branch and leaf pages),
// exits non-zero with one line that names the file and says what to do,
// or, where the damage lies in pages the command never reads, does its
// work. None panics.
func TestEveryCommandOnADamagedFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it about 300 times")
	}
	bin := buildBinary(t)
	good := filepath.Join(t.TempDir(), "good.db")
	manyProbesDB(t, good)
	b, _ := os.ReadFile(good)
	ps := int64(os.Getpagesize())
	freelist := pagesOf(t, good, "freelist", "")[0]
	branch := pagesOf(t, good, "branch", "probes")[0]
	leaves := pagesOf(t, good, "leaf", "probes")
	leaf := leaves[len(leaves)/2]
	var used int64 // the end of the last page in use
	for _, p := range leaves {
		used = max(used, int64(p.ID+1)*ps)
	}
	flip := func(offs ...int64) func([]byte) []byte {
		return func(b []byte) []byte {
			for _, off := range offs {
				b[off] ^= 0xff
			}
			return b
		}
	}
	cut := func(n int64) func([]byte) []byte { return func(b []byte) []byte { return b[:n] } }
	type damage struct {
		name  string
		do    func([]byte) []byte
		reads bool // found only by the commands that read the page
	}
	damages := []damage{
		{"both meta pages", flip(16+48, ps+16+48), false},
		{"freelist page", flip(int64(freelist.ID)*ps + 8), false},
		{"probes branch page", flip(int64(branch.ID) * ps), true},
		{"probes leaf page", flip(int64(leaf.ID) * ps), true},
		{"probes leaf element", flip(int64(leaf.ID)*ps + 16 + 11), true}, // its first key's size
		{"probes leaf value", flip(firstValue(b, leaf.ID)), true},        // its first probe's observation count
		{"cut at 8 KB", cut(8 << 10), false},
		{"cut at 16 KB", cut(16 << 10), false},
		{"cut at 50000 bytes", cut(50000), false},
		{"cut in the middle", cut(used / 2), false},
	}
	clear := regexp.MustCompile(`^fluxwatch: database (\S+) is damaged \(.+\): restore a backup or run fluxwatch db salvage\n$`)
	// The commands that read every probe must meet damage in the probes
	// bucket.
	// db backup checks the copy it makes, so it meets damage anywhere;
	// and a damaged database never replaces a good backup.
	readsProbes := map[string]bool{"export-observations": true, "db check": true, "classify": true, "db backup": true}
	goodBackup := []byte("a good backup, made earlier")
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "bad.db")
			if err := os.WriteFile(db, d.do(bytes.Clone(b)), 0o600); err != nil {
				t.Fatal(err)
			}
			backup := filepath.Join(dir, "backup.db")
			if err := os.WriteFile(backup, goodBackup, 0o600); err != nil {
				t.Fatal(err)
			}
			cmds := append(readCommands(db, dir),
				[]string{"classify", "--db", db},
				[]string{"seeds", "add", "--db", db, "-"},
				[]string{"seeds", "remove", "--db", db, "flux.test"},
				[]string{"blocklist", "delist", "--db", db, "calm.test"},
				[]string{"export", "--db", db, "--format", "rpz", "--out", "-"},
				[]string{"db", "backup", "--db", db, "--out", backup},
				[]string{"db", "compact", "--db", db},
			)
			for _, args := range cmds {
				name := args[0]
				if name == "db" || name == "seeds" || name == "blocklist" {
					name += " " + args[1]
				}
				stdout, stderr, code := runBin(t, bin, args...)
				if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
					t.Fatalf("%v panicked:\n%s", args, stderr)
				}
				if code == 0 && d.reads && !readsProbes[name] {
					continue // the damage lies where this command does not read
				}
				if code == 0 {
					t.Errorf("%v: exit 0 on a damaged file; stdout %q", args, stdout)
					continue
				}
				if m := clear.FindStringSubmatch(stderr); m == nil || m[1] != db {
					t.Errorf("%v: exit %d, stderr %q; want the one line naming %s", args, code, stderr, db)
				}
			}
			if b, _ := os.ReadFile(backup); !bytes.Equal(b, goodBackup) {
				t.Errorf("db backup of a damaged database replaced the good backup")
			}
			// db check says what it found, a line each.
			stdout, _, _ := runBin(t, bin, "db", "check", "--db", db)
			if !strings.HasPrefix(stdout, "db: "+db+": ") {
				t.Errorf("db check printed %q", stdout)
			}
		})
	}
}

// db salvage recovers every probe that was not on the damaged leaf page,
// into a file that passes db check; db backup writes a checked copy and
// leaves the database as it was.
func TestSalvageAndBackupCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	manyProbesDB(t, good)
	before, _ := os.ReadFile(good)

	backup := filepath.Join(dir, "backup.db")
	if stdout, stderr, code := runBin(t, bin, "db", "backup", "--db", good, "--out", backup); code != 0 || !strings.Contains(stdout, "checked") {
		t.Fatalf("db backup: exit %d\n%s%s", code, stdout, stderr)
	}
	if after, _ := os.ReadFile(good); !bytes.Equal(before, after) {
		t.Error("db backup changed the database")
	}
	if stdout, stderr, code := runBin(t, bin, "db", "check", "--db", backup); code != 0 {
		t.Fatalf("db check of the backup: exit %d\n%s%s", code, stdout, stderr)
	}

	leaves := pagesOf(t, good, "leaf", "probes")
	hit := leaves[len(leaves)/3]
	want := map[string]bool{}
	for _, l := range leaves {
		if l.ID != hit.ID {
			for _, k := range l.Keys {
				want[string(k)] = true
			}
		}
	}
	bad := filepath.Join(dir, "bad.db")
	damaged := bytes.Clone(before)
	damaged[int64(hit.ID)*int64(os.Getpagesize())] ^= 0xff
	os.WriteFile(bad, damaged, 0o600)
	salvaged := filepath.Join(dir, "salvaged.db")
	stdout, stderr, code := runBin(t, bin, "db", "salvage", "--db", bad, "--out", salvaged)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("db: lost: bucket probes: page %d", hit.ID)) {
		t.Fatalf("db salvage: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, stderr, code := runBin(t, bin, "db", "check", "--db", salvaged); code != 0 {
		t.Fatalf("db check of the salvaged file: exit %d\n%s%s", code, stdout, stderr)
	}
	got := map[string]bool{}
	for _, l := range pagesOf(t, salvaged, "leaf", "probes") {
		for _, k := range l.Keys {
			got[string(k)] = true
		}
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("probe %x, on an undamaged page, was not salvaged", k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("salvaged %d probes; %d were on undamaged pages", len(got), len(want))
	}
	if _, _, code := runBin(t, bin, "show", "--db", salvaged, "flux.test"); code != 0 {
		t.Errorf("show on the salvaged file: exit %d", code)
	}
	if _, _, code := runBin(t, bin, "db", "salvage", "--db", bad, "--out", salvaged); code == 0 {
		t.Error("db salvage over an existing file succeeded")
	}
}
