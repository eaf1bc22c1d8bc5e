package results_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fluxwatch/fluxwatch/results"
)

// version writes files a, b and c, each holding n; version n+1 replaces
// c by d, so a reader can tell a mixed directory from either version.
func version(n int) func(string) error {
	return func(dir string) error {
		names := []string{"a", "b", "c"}
		if n%2 == 1 {
			names[2] = "d"
		}
		for _, name := range names {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(n)), 0o600); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestWriteDirAtomic(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "feed")
	for n := range 3 { // creates, then replaces twice
		if err := results.WriteDirAtomic(dir, version(n)); err != nil {
			t.Fatal(err)
		}
		want := []string{"a", "b", "c"}
		if n%2 == 1 {
			want[2] = "d"
		}
		assertOnly(t, dir, want...)
		assertFile(t, filepath.Join(dir, "b"), strconv.Itoa(n))
		if n == 0 {
			assertOnly(t, parent, "feed")
			continue
		}
		assertOnly(t, parent, ".feed.prev", "feed") // the previous version, and no temporary directory
		assertFile(t, filepath.Join(parent, ".feed.prev", "b"), strconv.Itoa(n-1))
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("directory mode %v (%v), want 0755", fi.Mode().Perm(), err)
		}
	}

	// A failing write leaves the previous directory and nothing else.
	boom := errors.New("boom")
	err := results.WriteDirAtomic(dir, func(tmp string) error {
		version(7)(tmp)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("WriteDirAtomic with a failing write = %v, want it to wrap boom", err)
	}
	assertOnly(t, dir, "a", "b", "c")
	assertFile(t, filepath.Join(dir, "a"), "2")
	assertFile(t, filepath.Join(parent, ".feed.prev", "a"), "1")
	assertOnly(t, parent, ".feed.prev", "feed")

	// A file where the directory should be is not replaced.
	file := filepath.Join(parent, "file")
	os.WriteFile(file, []byte("keep"), 0o644)
	if err := results.WriteDirAtomic(file, version(1)); err == nil {
		t.Error("WriteDirAtomic over a file succeeded")
	}
	assertFile(t, file, "keep")
	// Nor is anything written for a missing parent or a name that is no name.
	for _, bad := range []string{filepath.Join(parent, "no", "such"), ".", "/"} {
		if err := results.WriteDirAtomic(bad, version(1)); err == nil {
			t.Errorf("WriteDirAtomic(%q) succeeded", bad)
		}
	}
	assertOnly(t, parent, ".feed.prev", "feed", "file")
}

func TestWriteDirAtomicRelative(t *testing.T) {
	parent := t.TempDir()
	t.Chdir(parent)
	for n := range 2 {
		if err := results.WriteDirAtomic("out", version(n)); err != nil {
			t.Fatal(err)
		}
	}
	assertOnly(t, parent, ".out.prev", "out")
	assertOnly(t, filepath.Join(parent, "out"), "a", "b", "d")
}

// TestWriteDirAtomicReaders replaces a directory over and over while
// readers read its files by path, as a web server or Suricata does: the
// path must always lead to a whole version, never to nothing. Only Linux
// swaps directories in one step; elsewhere the directory is missing for an
// instant.
func TestWriteDirAtomicReaders(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("directories are swapped in one step only on Linux")
	}
	dir := filepath.Join(t.TempDir(), "feed")
	if err := results.WriteDirAtomic(dir, version(0)); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			for !done.Load() || reads.Load() < 200 {
				for _, name := range []string{"a", "b"} {
					b, err := os.ReadFile(filepath.Join(dir, name))
					if _, perr := strconv.Atoi(string(b)); err != nil || perr != nil {
						errs <- fmt.Errorf("reading %s: %q, %v", name, b, err)
						return
					}
				}
				reads.Add(1)
			}
		})
	}
	for n := 1; n <= 200; n++ {
		if err := results.WriteDirAtomic(dir, version(n)); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assertOnly(t, filepath.Dir(dir), ".feed.prev", "feed")
}
