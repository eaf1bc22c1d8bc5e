package storage

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

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

// guard runs fn, turning a panic raised by bbolt, or a fault on the
// memory-mapped file (a page beyond the end of a cut file), into a
// DamagedError, and an error of a value that does not decode into one
// too. Faults become panics only on the goroutine that asked for it, so
// guard must run on the goroutine that touches the pages. A panic raised
// elsewhere (a bug in a caller's function run inside a transaction) is
// not the file's doing: it goes on as it was.
func guard(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if !fromTheFile(r) {
				panic(r)
			}
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

// fromTheFile says whether a panic being recovered came from reading the
// database: a memory fault at an address other than near nil (the only
// memory Go code here reaches without bounds checks is bbolt's map of the
// file), or a panic raised in bbolt's code (its assertions on pages, a
// slice bound exceeded by a damaged length). It must be called from the
// deferred function that recovered, while the panicking frames are still
// on the stack.
func fromTheFile(r any) bool {
	if f, ok := r.(interface{ Addr() uintptr }); ok && f.Addr() >= 1<<16 {
		return true
	}
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(0, pcs)])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case !panicking:
			panicking = f.Function == "runtime.gopanic"
		case standardLibrary(f.Function):
			// The runtime raising the panic, or a library bbolt called.
		default:
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// standardLibrary says whether a function (as runtime.Frame names it,
// "path/to/pkg.Func") is in Go's standard library: the first element of
// its package path has no dot. Package main is not.
func standardLibrary(function string) bool {
	first := function
	if i := strings.IndexByte(first, '/'); i >= 0 {
		first = first[:i]
	} else if i := strings.IndexByte(first, '.'); i >= 0 {
		first = first[:i]
	}
	return first != "main" && !strings.Contains(first, ".")
}
