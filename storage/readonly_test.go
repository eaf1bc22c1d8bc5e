package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fluxwatch/fluxwatch/obs"
)

// filledDB writes a small database holding every kind of record (domains,
// probes, answer sets, verdicts, a listing, a delisting, a publish) and
// closes it.
func filledDB(t *testing.T, path string) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddDomains([]string{"a.test", "b.test", "c.test"}, "unit", t0); err != nil {
		t.Fatal(err)
	}
	var ps []obs.Probe
	for i := range 20 {
		at := t0.Add(time.Duration(i) * time.Minute)
		ps = append(ps, probe("a.test", "v1", at, "192.0.2.1", fmt.Sprintf("198.51.100.%d", i)),
			probe("b.test", "v2", at, "192.0.2.7"))
	}
	if _, err := s.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVerdicts([]VerdictRecord{{Domain: "a.test", Full: []byte(`{"verdict":"flux"}`), Listed: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delist("c.test", Delisting{Time: t0, Reason: "test"}, []byte(`{"event":"delisted"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordPublish(t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextSerial(t0); err != nil {
		t.Fatal(err)
	}
}

// readEverything runs every read accessor of the store.
func readEverything(s *Store) error {
	if _, err := s.Stats(); err != nil {
		return err
	}
	if _, err := s.CountDomains(); err != nil {
		return err
	}
	if err := s.Domains(func(Domain) error { return nil }); err != nil {
		return err
	}
	n := 0
	if err := s.History("a.test", time.Time{}, time.Time{}, func(obs.Probe) error { n++; return nil }); err != nil {
		return err
	}
	if n != 20 {
		return fmt.Errorf("history of a.test: %d probes, want 20", n)
	}
	if err := s.Verdicts(func(string, []byte) error { return nil }); err != nil {
		return err
	}
	if err := s.Listed(func(string, []byte) error { return nil }); err != nil {
		return err
	}
	if _, _, err := s.ListingState([]string{"a.test", "c.test"}); err != nil {
		return err
	}
	if _, err := s.Publishes(10); err != nil {
		return err
	}
	if _, err := s.Due(t0); err != nil {
		return err
	}
	if _, _, err := s.Domain("a.test"); err != nil {
		return err
	}
	return s.Check()
}

// A read-only open creates, upgrades and changes nothing: the file is the
// same byte for byte afterwards, bbolt has it read-only, and writes fail.
func TestOpenReadOnlyChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	filledDB(t, path)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err := OpenReadOnly(path)
		if err != nil {
			t.Fatal(err)
		}
		if !s.readOnly || !s.db.IsReadOnly() {
			t.Fatalf("store read-only %v, bbolt read-only %v", s.readOnly, s.db.IsReadOnly())
		}
		if err := readEverything(s); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddDomains([]string{"d.test"}, "unit", t0); !errors.Is(err, bolterrors.ErrDatabaseReadOnly) {
			t.Errorf("AddDomains on a read-only store: %v", err)
		}
		if _, err := s.NextSerial(t0); !errors.Is(err, bolterrors.ErrDatabaseReadOnly) {
			t.Errorf("NextSerial on a read-only store: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("the file changed under read-only opens (%d bytes before, %d after)", len(before), len(after))
	}
}

// Two read-only opens share the file; a writer waits for both.
func TestReadOnlyOpensShare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	filledDB(t, path)
	a, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("second read-only open: %v", err)
	}
	defer b.Close()
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("writer while readers hold the file: %v; want ErrLocked", err)
	}
}

// A missing database is an error for OpenReadOnly and OpenExisting, and
// neither creates a file; Open creates one.
func TestMissingDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing.db")
	for name, open := range map[string]func(string) (*Store, error){"OpenReadOnly": OpenReadOnly, "OpenExisting": OpenExisting} {
		_, err := open(path)
		if !errors.Is(err, ErrNoDatabase) || err.Error() != "no database at "+path {
			t.Errorf("%s: %v; want %q", name, err, "no database at "+path)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%s created %v", name, entries)
		}
	}
	if _, _, err := Compact(path); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("Compact: %v", err)
	}
	// A file cut to nothing (a full disk) is damage for every open: none
	// may make a new database of it. Only a missing file is created.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func(string) (*Store, error){"OpenReadOnly": OpenReadOnly, "OpenExisting": OpenExisting, "Open": Open} {
		if s, err := open(empty); !errors.Is(err, ErrDamaged) {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s of an empty file: %v; want it damaged", name, err)
		}
		if fi, _ := os.Stat(empty); fi.Size() != 0 {
			t.Fatalf("%s wrote %d bytes into the empty file", name, fi.Size())
		}
	}
	os.Remove(empty)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// A file whose schema needs an upgrade is refused by a read-only open,
// unchanged, with what to do; a writing open upgrades it.
func TestReadOnlyRefusesAnUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v5.db")
	filledDB(t, path)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaSchema, u32key(5)) })
	db.Close()
	before, _ := os.ReadFile(path)
	_, err = OpenReadOnly(path)
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "schema version 5") || !strings.Contains(err.Error(), "db compact") {
		t.Fatalf("read-only open of a version 5 file: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused read-only open changed the file")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenReadOnly(path)
	if err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	s.Close()
}

// readOnlyHelperEnv names the database the helper process reads.
const readOnlyHelperEnv = "FLUXWATCH_TEST_READONLY_DB"

// TestReadOnlyHelperProcess is not a test: TestReadOnlyFile runs the test
// binary as another user with it, to read a database it may not write.
func TestReadOnlyHelperProcess(t *testing.T) {
	path := os.Getenv(readOnlyHelperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	// The condition is real: this user cannot open the file for writing.
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		f.Close()
		t.Fatalf("uid %d could open %s for writing", os.Getuid(), path)
	}
	if _, err := Open(path); err == nil || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("a writing open as uid %d: %v; want a permission error", os.Getuid(), err)
	}
	s, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := readEverything(s); err != nil {
		t.Fatal(err)
	}
	fmt.Println("helper: read everything as uid", os.Getuid())
}

// A file the user can only read (0444 in a 0555 directory) opens
// read-only and is unchanged. Run as root, where permission bits stop
// nothing, the read runs again in a process with uid and gid 65534, which
// can neither write the file nor create anything beside it.
func TestReadOnlyFile(t *testing.T) {
	dir := t.TempDir()
	// A directory every user can enter, for the database and the test
	// binary the other user runs.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	dbDir := filepath.Join(dir, "db")
	os.Mkdir(dbDir, 0o755)
	path := filepath.Join(dbDir, "ro.db")
	filledDB(t, path)
	before, _ := os.ReadFile(path)
	os.Chmod(path, 0o444)
	os.Chmod(dbDir, 0o555)
	t.Cleanup(func() { os.Chmod(dbDir, 0o755) })

	s, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := readEverything(s); err != nil {
		t.Fatal(err)
	}
	s.Close()

	if os.Geteuid() == 0 {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "storage.test")
		copyFile(t, self, bin, 0o755)
		cmd := exec.Command(bin, "-test.run=^TestReadOnlyHelperProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), readOnlyHelperEnv+"="+path)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "helper: read everything as uid 65534") {
			t.Fatalf("reading as uid 65534: %v\n%s", err, out)
		}
	}
	if entries, _ := os.ReadDir(dbDir); len(entries) != 1 {
		t.Errorf("the directory holds %v, want only the database", entries)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the read-only file changed")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
