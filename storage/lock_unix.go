//go:build unix

package storage

import (
	"errors"
	"os"
	"syscall"
)

// lockedByAnother says whether another open file holds bbolt's exclusive
// lock on path: a writer is at work on it, and what a look at the file
// without the lock saw may be a page it is rewriting.
func lockedByAnother(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}
