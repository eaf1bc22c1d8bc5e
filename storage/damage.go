package storage

import (
	"errors"
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DamagedError says that the database file is damaged: cut short, a page
// that is not what its parent says it is, a value that does not decode.
// bbolt panics on much of this (and a page read beyond the end of a cut
// file faults); storage recovers at its boundary, Open and every
// transaction it runs, and returns this instead.
type DamagedError struct {
	Path   string
	Reason string
	// Problems, from Check and CheckFile, are the problems found, one
	// each (Reason joins them).
	Problems []error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("database %s is damaged (%s): restore a backup or run fluxwatch db salvage", e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

func damaged(path, format string, args ...any) error {
	return &DamagedError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// guard runs fn, turning a panic, or a fault on the memory-mapped file
// (a page beyond the end of a cut file), into a DamagedError, and an
// error of a value that does not decode into one too. Faults become panics
// only on the goroutine that asked for it, so guard must run on the
// goroutine that touches the pages.
func guard(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = damaged(path, "%v", r)
		}
	}()
	err = fn()
	var de *DamagedError
	switch {
	case err == nil, errors.As(err, &de):
	case errors.Is(err, errCorrupt):
		err = damaged(path, "%v", err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrInvalidMapping):
		err = damaged(path, "%v", err)
	}
	return err
}

// boltDB is the bbolt handle with every transaction guarded: a damaged
// page read inside View or Update is an error, not a crash. The
// transaction is rolled back by bbolt as the panic unwinds through it.
type boltDB struct {
	*bolt.DB
	path string
}

func (db boltDB) View(fn func(*bolt.Tx) error) error {
	return guard(db.path, func() error { return db.DB.View(fn) })
}

func (db boltDB) Update(fn func(*bolt.Tx) error) error {
	return guard(db.path, func() error { return db.DB.Update(fn) })
}
