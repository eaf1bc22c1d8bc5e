package storage

import (
	"fmt"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// ReleaseMemory drops the database file's pages from this process's
// resident set (madvise MADV_DONTNEED on bbolt's read-only shared mapping).
// The data stays in the kernel's page cache and is faulted back in on the
// next read, so a daemon that scans a large database now and then does not
// keep it all counted against itself. The read transaction keeps the
// mapping from being moved meanwhile.
func (s *Store) ReleaseMemory() error {
	return s.db.View(func(tx *bolt.Tx) error {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.db.Info().Data, uintptr(tx.Size()), syscall.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("releasing database pages: %w", errno)
		}
		return nil
	})
}
