package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// bigDB writes a database whose probes bucket spans many leaf pages under
// branch pages: 6 domains, 600 probes each.
func bigDB(t *testing.T, path string) {
	t.Helper()
	filledDB(t, path)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	names := []string{"d1.test", "d2.test", "d3.test", "d4.test", "d5.test", "d6.test"}
	if _, err := s.AddDomains(names, "unit", t0); err != nil {
		t.Fatal(err)
	}
	var ps []obs.Probe
	for i := range 600 {
		for j, d := range names {
			ps = append(ps, probe(d, fmt.Sprintf("v%d", i%3), t0.Add(time.Duration(i)*time.Minute),
				fmt.Sprintf("10.%d.%d.1", j, i%250), "192.0.2.9"))
		}
	}
	if _, err := s.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// pagesOf returns the pages of a kind (and bucket, if given) in a file.
func pagesOf(t *testing.T, path, kind, bucket string) []FilePage {
	t.Helper()
	all, err := FilePages(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []FilePage
	for _, p := range all {
		if p.Kind == kind && (bucket == "" || p.Bucket == bucket) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s page of bucket %q in %s", kind, bucket, path)
	}
	return out
}

// damage is one way to damage a copy of a good file.
type damage struct {
	name string
	do   func(b []byte) []byte
	// reads says the damage is found only by reading what it hit: the
	// file opens, and the reads that touch it fail.
	reads bool
}

// flip inverts the byte at off.
func flip(off int64) func([]byte) []byte {
	return func(b []byte) []byte { b[off] ^= 0xff; return b }
}

func damages(t *testing.T, good string) []damage {
	ps := int64(os.Getpagesize())
	freelist := pagesOf(t, good, "freelist", "")[0]
	branch := pagesOf(t, good, "branch", "probes")[0]
	leaves := pagesOf(t, good, "leaf", "probes")
	leaf := leaves[len(leaves)/2]
	ds := []damage{
		{name: "both meta pages", do: func(b []byte) []byte { b[16+48] ^= 0xff; b[ps+16+48] ^= 0xff; return b }},
		{name: "freelist page", do: flip(int64(freelist.ID)*ps + 8)},
		{name: "probes branch page", do: flip(int64(branch.ID) * ps), reads: true},
		{name: "probes leaf page", do: flip(int64(leaf.ID) * ps), reads: true},
		// The key size of the leaf's first element: its key then runs
		// far past the page.
		{name: "probes leaf element", do: flip(int64(leaf.ID)*ps + pageHeaderSize + 11), reads: true},
		// A byte inside a probe's value on the leaf: fluxwatch's decoder
		// refuses it.
		{name: "probes leaf value", do: flip(firstValue(t, good, leaf.ID)), reads: true},
	}
	bf, err := openBoltFile(good)
	if err != nil {
		t.Fatal(err)
	}
	used := int64(bf.meta.hwm) * ps // the file grows a megabyte at a time: what lies beyond is unused
	bf.Close()
	for _, cut := range []int64{100, 8 << 10, 16 << 10, 50000, used / 2, used - ps} {
		if cut < used {
			ds = append(ds, damage{name: fmt.Sprintf("cut at %d bytes", cut), do: func(b []byte) []byte { return b[:cut] }})
		}
	}
	return ds
}

// firstValue returns the file offset of the first value on leaf page id:
// its first byte is the probe's observation count.
func firstValue(t *testing.T, path string, id uint64) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	elem := int64(id)*int64(os.Getpagesize()) + pageHeaderSize
	pos, ksize := binary.LittleEndian.Uint32(b[elem+4:]), binary.LittleEndian.Uint32(b[elem+8:])
	return elem + int64(pos) + int64(ksize)
}

func writeDamaged(t *testing.T, good string, d damage) string {
	t.Helper()
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(path, d.do(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll reads every domain's history and every verdict.
func readAll(s *Store) error {
	var names []string
	if err := s.Domains(func(d Domain) error { names = append(names, d.Name); return nil }); err != nil {
		return err
	}
	for _, n := range names {
		if err := s.History(n, time.Time{}, time.Time{}, func(obs.Probe) error { return nil }); err != nil {
			return err
		}
	}
	return s.Verdicts(func(string, []byte) error { return nil })
}

// Damage of every kind is a *DamagedError naming the file, from the
// open or from the reads that meet it, from Check and CheckFile; never a
// panic (which would end the test binary) or a fault.
func TestDamageIsAnErrorNotACrash(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	bigDB(t, good)
	for _, d := range damages(t, good) {
		t.Run(d.name, func(t *testing.T) {
			for mode, open := range map[string]func(string) (*Store, error){"read-only": OpenReadOnly, "write": OpenExisting} {
				path := writeDamaged(t, good, d)
				s, err := open(path)
				if err == nil {
					if !d.reads {
						s.Close()
						t.Fatalf("%s open of a file with a damaged %s succeeded", mode, d.name)
					}
					err = readAll(s)
					if cerr := s.Check(); !errors.Is(cerr, ErrDamaged) {
						t.Errorf("%s: Check() = %v; want damage", mode, cerr)
					}
					s.Close()
				}
				var de *DamagedError
				if !errors.As(err, &de) || de.Path != path {
					t.Fatalf("%s: %v; want a *DamagedError for %s", mode, err, path)
				}
				msg := err.Error()
				t.Logf("%s: %s", mode, msg)
				if !strings.Contains(msg, "database "+path+" is damaged (") || !strings.HasSuffix(msg, "): restore a backup or run fluxwatch db salvage") {
					t.Errorf("%s: message %q", mode, msg)
				}
				if err := CheckFile(path); !errors.Is(err, ErrDamaged) {
					t.Errorf("CheckFile: %v", err)
				}
			}
		})
	}
}

// One bad meta page costs nothing but the transaction it was written
// by: bbolt reads the other. Check still reports it.
func TestOneBadMetaPage(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	filledDB(t, good)
	path := writeDamaged(t, good, damage{do: flip(16 + 48)})
	s, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := readEverythingButCheck(s); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "meta page 0") {
		t.Fatalf("Check() = %v; want it to name meta page 0", err)
	}
	s.Close()
	// A bad meta page must not hide damage elsewhere: with a probe's value
	// flipped too, Check names both.
	leaf := pagesOf(t, good, "leaf", "probes")[0]
	both := writeDamaged(t, good, damage{do: func(b []byte) []byte {
		return flip(firstValue(t, good, leaf.ID))(flip(16 + 48)(b))
	}})
	if err := CheckFile(both); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "meta page 0") ||
		!strings.Contains(err.Error(), "probe") {
		t.Fatalf("CheckFile() = %v; want it to name meta page 0 and the damaged probe", err)
	}
}

func readEverythingButCheck(s *Store) error {
	if _, err := s.Stats(); err != nil {
		return err
	}
	return readAll(s)
}

// Salvage recovers every probe that was not on the damaged leaf, and
// every other record; the new file passes Check.
func TestSalvageRecoversEveryProbeOnUndamagedPages(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	bigDB(t, good)
	leaves := pagesOf(t, good, "leaf", "probes")
	hit := leaves[len(leaves)/2]
	want := map[string]bool{}
	for _, l := range leaves {
		if l.ID == hit.ID {
			continue
		}
		for _, k := range l.Keys {
			want[string(k)] = true
		}
	}
	for _, d := range []damage{{name: "leaf header", do: flip(int64(hit.ID) * int64(os.Getpagesize()))}} {
		bad := writeDamaged(t, good, d)
		out := filepath.Join(t.TempDir(), "salvaged.db")
		rep, err := Salvage(bad, out)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Lost) == 0 || !strings.Contains(strings.Join(rep.Lost, "\n"), fmt.Sprintf("page %d", hit.ID)) {
			t.Errorf("report does not name page %d: %q", hit.ID, rep.Lost)
		}
		got := map[string]bool{}
		for _, l := range pagesOf(t, out, "leaf", "probes") {
			for _, k := range l.Keys {
				got[string(k)] = true
			}
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("probe %x, on an undamaged page, was not recovered", k)
			}
		}
		for _, k := range hit.Keys {
			if got[string(k)] {
				t.Errorf("probe %x came back from the damaged page", k)
			}
		}
		if len(got) != len(want) || rep.Copied["probes"] != len(want) {
			t.Errorf("%d probes recovered, %d reported; want %d", len(got), rep.Copied["probes"], len(want))
		}
		s, err := OpenReadOnly(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Check(); err != nil {
			t.Errorf("the salvaged file: %v", err)
		}
		var domains int
		s.Domains(func(Domain) error { domains++; return nil })
		v, _ := s.Verdict("a.test")
		if domains != 9 || v == nil {
			t.Errorf("salvaged %d domains, verdict of a.test %q", domains, v)
		}
		// New ids do not collide with salvaged ones.
		s.Close()
		w, err := Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.AddDomains([]string{"new.test"}, "unit", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteProbes([]obs.Probe{probe("new.test", "v9", t0, "192.0.2.200", "192.0.2.201")}); err != nil {
			t.Fatal(err)
		}
		if err := w.Check(); err != nil {
			t.Errorf("after writing to the salvaged file: %v", err)
		}
		w.Close()
	}
	// A cut file gives what lies before the cut.
	bad := writeDamaged(t, good, damage{do: func(b []byte) []byte { return b[:len(b)*2/3] }})
	out := filepath.Join(t.TempDir(), "salvaged-cut.db")
	rep, err := Salvage(bad, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Lost) == 0 {
		t.Errorf("cut file: nothing reported lost (%v copied)", rep.Copied)
	}
	t.Logf("cut file: copied %v, lost %q", rep.Copied, rep.Lost)
	if _, err := Salvage(bad, out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("salvage over an existing file: %v", err)
	}
	// Cut before any root: nothing to read, nothing written.
	bad = writeDamaged(t, good, damage{do: func(b []byte) []byte { return b[:8192] }})
	out = filepath.Join(t.TempDir(), "nothing.db")
	if _, err := Salvage(bad, out); err == nil || !strings.Contains(err.Error(), "nothing could be read") {
		t.Errorf("salvage of a file holding no root: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("salvage of nothing wrote a file")
	}
}

// A backup taken while a writer commits holds every probe committed
// before it began, and passes Check.
func TestBackupWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.db")
	filledDB(t, path)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddDomains([]string{"w.test"}, "unit", t0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	committed := 0
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := s.WriteProbes([]obs.Probe{probe("w.test", "v1", t0.Add(time.Duration(i)*time.Second), "192.0.2.1")}); err != nil {
				done <- err
				return
			}
			mu.Lock()
			committed++
			mu.Unlock()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	backup := filepath.Join(t.TempDir(), "backup.db")
	var first int
	for i := range 3 { // the second and third replace the first
		mu.Lock()
		before := committed
		mu.Unlock()
		if i == 0 {
			first = before
		}
		if _, err := s.Backup(backup); err != nil {
			t.Fatal(err)
		}
		if err := CheckFile(backup); err != nil {
			t.Fatalf("backup: %v", err)
		}
		b, err := OpenReadOnly(backup)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		b.History("w.test", time.Time{}, time.Time{}, func(obs.Probe) error { n++; return nil })
		b.Close()
		if n < before {
			t.Fatalf("backup holds %d probes of w.test; %d were committed before it began", n, before)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The writer went on while the backups ran: they did not hold it.
	if mu.Lock(); first == 0 || committed <= first {
		t.Fatalf("%d probes committed before the first backup, %d at the end: the writer did not run alongside", first, committed)
	}
	mu.Unlock()
	if _, err := s.Backup(path); err == nil {
		t.Error("a backup over the database itself was allowed")
	}
	if entries, _ := os.ReadDir(filepath.Dir(backup)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	ro, err := OpenReadOnly(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	other := filepath.Join(t.TempDir(), "from-ro.db")
	if _, err := ro.Backup(other); err != nil {
		t.Fatalf("backup from a read-only store: %v", err)
	}
	cp, err := OpenReadOnly(other)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	n := 0
	cp.History("w.test", time.Time{}, time.Time{}, func(obs.Probe) error { n++; return nil })
	if n == 0 {
		t.Fatal("the backup of the read-only store holds no probe of w.test")
	}
}

// Damage seen without the lock while another process holds the file is
// not reported as damage: the holder may be rewriting the page.
func TestDamageUnderAWriterIsALockError(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	filledDB(t, good)
	bad := writeDamaged(t, good, damage{do: func(b []byte) []byte { return b }})
	s, err := Open(bad) // holds the lock
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Another process's view of a page mid-rewrite, simulated by
	// breaking both meta pages under the holder.
	f, err := os.OpenFile(bad, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	ps := int64(os.Getpagesize())
	for _, off := range []int64{16 + 48, ps + 16 + 48} {
		f.WriteAt([]byte{0xff}, off)
	}
	f.Close()
	if _, err := OpenReadOnly(bad); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open of a held file that looks damaged: %v; want ErrLocked", err)
	}
}

// A panic in a caller's function run inside a transaction is a bug, not
// damage: the guard lets it go on, after bbolt has rolled back.
func TestGuardLetsOtherPanicsThrough(t *testing.T) {
	s := openTest(t)
	if _, err := s.AddDomains([]string{"a.test"}, "unit", t0); err != nil {
		t.Fatal(err)
	}
	for name, bug := range map[string]func(){
		"panic":       func() { panic("a bug in the caller") },
		"nil map":     func() { var m map[string]int; m["x"]++ },
		"nil pointer": func() { var d *Domain; _ = d.Name },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: the panic was swallowed", name)
				} else if _, ok := r.(*DamagedError); ok {
					t.Errorf("%s: taken for damage", name)
				}
			}()
			err := s.Domains(func(Domain) error { bug(); return nil })
			t.Errorf("%s: Domains returned %v", name, err)
		}()
	}
	// The store still works: the transactions were rolled back.
	if _, err := s.AddDomains([]string{"b.test"}, "unit", t0); err != nil {
		t.Fatal(err)
	}
}

func TestStandardLibrary(t *testing.T) {
	for fn, want := range map[string]bool{
		"runtime.gopanic": true, "internal/bytealg.Compare": true, "encoding/binary.Uvarint": true,
		"go.etcd.io/bbolt/internal/common.(*Page).FastCheck": false, "go.etcd.io/bbolt.(*Cursor).search": false,
		"github.com/fluxwatch/fluxwatch/storage.(*Store).History": false, "main.cmdShow": false,
	} {
		if got := standardLibrary(fn); got != want {
			t.Errorf("standardLibrary(%q) = %v", fn, got)
		}
	}
}

// A leaf element whose key runs past its page is found by the page walk,
// with the page it is on, not left for a read to fault on.
func TestCheckFindsALeafElementPastItsPage(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	filledDB(t, good)
	leaf := pagesOf(t, good, "leaf", "probes")[0]
	bf, err := openBoltFile(good)
	if err != nil {
		t.Fatal(err)
	}
	ps := int64(bf.pageSize)
	bf.Close()
	path := writeDamaged(t, good, damage{do: flip(int64(leaf.ID)*ps + pageHeaderSize + 11)})
	want := fmt.Sprintf("page %d", leaf.ID)
	if err := CheckFile(path); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), want) {
		t.Fatalf("CheckFile() = %v; want it to name %s", err, want)
	}
}
