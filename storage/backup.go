package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the database to path, from one read
// transaction: writers go on meanwhile, and the copy holds exactly what
// was committed when the backup began. The copy is written to a temporary
// file beside path, synced, checked (CheckFile) and only then renamed over
// path, so path is either the old file or the whole new copy, never a
// part and never a copy of damage: a copy that fails its check is removed
// and the database is reported damaged. It works on a read-only store too.
func (s *Store) Backup(path string) (size int64, err error) {
	if fi, err := os.Stat(path); err == nil {
		if own, err := os.Stat(s.path); err == nil && os.SameFile(fi, own) {
			return 0, fmt.Errorf("backing up %s: %s is the database itself", s.path, path)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".backup-*")
	if err != nil {
		return 0, fmt.Errorf("backing up %s: %w", s.path, err)
	}
	tmp := f.Name()
	fail := func(err error) (int64, error) {
		f.Close()
		os.Remove(tmp)
		return 0, fmt.Errorf("backing up %s to %s: %w", s.path, path, err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		size, err = tx.WriteTo(f)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := CheckFile(tmp); err != nil {
		os.Remove(tmp)
		var de *DamagedError
		if errors.As(err, &de) {
			return 0, damaged(s.path, "a copy of it fails its check: %s", de.Reason)
		}
		return 0, fmt.Errorf("backing up %s: checking the copy: %w", s.path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("backing up %s to %s: %w", s.path, path, err)
	}
	// The rename is durable once the directory is.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return size, nil
}
