package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// maxCheckErrors bounds the problems Check reports.
const maxCheckErrors = 20

// Check runs bbolt's consistency check and fluxwatch's own invariants:
// every probe's domain, vantage, names and answer sets exist; the domain
// and name tables agree in both directions; every set index entry and
// every listed verdict points at something that exists. Before bbolt's
// check it walks every page of the file itself (see pages.go), reading
// with ReadAt: a tree that does not hold together is reported page by page
// and never handed to bbolt's check, which would crash on a page beyond
// the end of a cut file. A problem found is a *DamagedError listing them
// all (up to 20).
func (s *Store) Check() error {
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		bad := func(format string, args ...any) error {
			errs = append(errs, fmt.Errorf(format, args...))
			if len(errs) >= maxCheckErrors {
				return errTooMany
			}
			return nil
		}
		metas, tree := s.checkPages(tx)
		errs = append(errs, metas...) // harmless to what follows: bbolt reads the other meta
		if len(tree) > 0 {
			errs = append(errs, tree...)
			return nil // the tree itself is damaged: stop here
		}
		before := len(errs)
		for err := range tx.Check() {
			if bad("bbolt: %v", err) != nil {
				break
			}
		}
		if len(errs) > before {
			return nil
		}
		err := s.checkTables(tx, bad)
		if err != nil && !errors.Is(err, errTooMany) {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return problems(s.path, errs)
}

// problems returns the problems found in the file at path as one
// *DamagedError, or nil.
func problems(path string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	reasons := make([]string, len(errs))
	for i, err := range errs {
		reasons[i] = err.Error()
	}
	return &DamagedError{Path: path, Reason: strings.Join(reasons, "; "), Problems: errs}
}

// checkPages walks the pages of the transaction's tree in the file, and
// returns apart the problems of the meta pages (one bad meta page is
// harmless while the other holds) and those of the tree. The pages a read
// transaction sees are not reused while it is open; if writers have since
// overwritten its meta page in the file, there is nothing stable to walk
// and it checks nothing.
func (s *Store) checkPages(tx *bolt.Tx) (metas, tree []error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, []error{err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, []error{err}
	}
	bf := &boltFile{f: f, size: fi.Size()}
	if err := bf.readMetas(s.path); err != nil {
		return nil, []error{err}
	}
	for i, m := range bf.metas {
		if m.err != nil {
			metas = append(metas, fmt.Errorf("meta page %d: %v (bbolt reads the other one)", i, m.err))
		}
	}
	found := false
	for _, m := range bf.metas {
		if m.err == nil && m.txid == uint64(tx.ID()) {
			bf.meta, found = m, true
		}
	}
	if !found {
		return metas, nil
	}
	if err := bf.inspect(s.path); err != nil {
		return metas, []error{errors.New(err.(*DamagedError).Reason)}
	}
	return metas, bf.walkPages(maxCheckErrors)
}

// CheckFile checks the database at path as Check does, and reports what
// it can of a file too damaged to open: what is wrong with its meta pages,
// its length, and every page of its tree that cannot be read.
func CheckFile(path string) error {
	s, err := OpenReadOnly(path)
	if err == nil {
		defer s.Close()
		return s.Check()
	}
	if !errors.Is(err, ErrDamaged) {
		return err
	}
	f, ferr := os.Open(path)
	if ferr != nil {
		return err
	}
	defer f.Close()
	fi, ferr := f.Stat()
	if ferr != nil {
		return err
	}
	bf := &boltFile{f: f, size: fi.Size()}
	if merr := bf.readMetas(path); merr != nil {
		var errs []error
		for i, m := range bf.metas {
			if m.err != nil {
				errs = append(errs, fmt.Errorf("meta page %d: %v", i, m.err))
			}
		}
		if len(errs) == 0 {
			return merr
		}
		return problems(path, errs)
	}
	var errs []error
	for i, m := range bf.metas {
		if m.err != nil {
			errs = append(errs, fmt.Errorf("meta page %d: %v", i, m.err))
		}
	}
	if ierr := bf.inspect(path); ierr != nil {
		errs = append(errs, errors.New(ierr.(*DamagedError).Reason))
	}
	errs = append(errs, bf.walkPages(maxCheckErrors)...)
	if len(errs) == 0 {
		return err // what opening it said
	}
	return problems(path, errs)
}

var errTooMany = errors.New("too many problems")

func (s *Store) checkTables(tx *bolt.Tx, bad func(string, ...any) error) error {
	domains, domainIDs := tx.Bucket(bucketDomains), tx.Bucket(bucketDomainID)
	names, nameIDs := tx.Bucket(bucketNames), tx.Bucket(bucketNameID)
	sets := tx.Bucket(bucketSets)
	if err := domains.ForEach(func(k, v []byte) error {
		d, err := decodeDomain(string(k), v)
		if err != nil {
			return bad("%v", err)
		}
		if string(domainIDs.Get(u32key(d.ID))) != d.Name {
			return bad("domain %s: id %d not in the id table", d.Name, d.ID)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := domainIDs.ForEach(func(k, v []byte) error {
		if domains.Get(v) == nil {
			return bad("domain id %x: %q not in the domain table", k, v)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := tx.Bucket(bucketDue).ForEach(func(k, v []byte) error {
		if len(k) != 4 || len(v) != dueValue {
			return bad("next-due chunk %x: %d bytes", k, len(v))
		}
		return nil
	}); err != nil {
		return err
	}
	if err := names.ForEach(func(k, v []byte) error {
		id, n := binary.Uvarint(v)
		if n <= 0 || string(nameIDs.Get(u64key(id))) != string(k) {
			return bad("name %q: id not in the id table", k)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := tx.Bucket(bucketSetIndex).ForEach(func(k, v []byte) error {
		if len(v)%8 != 0 {
			return bad("set index %x: %d bytes", k, len(v))
		}
		for i := 0; i < len(v); i += 8 {
			if sets.Get(v[i:i+8]) == nil {
				return bad("set index %x: set %d missing", k, binary.BigEndian.Uint64(v[i:i+8]))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	verdicts := tx.Bucket(bucketVerdicts)
	if err := tx.Bucket(bucketListed).ForEach(func(k, _ []byte) error {
		if verdicts.Get(k) == nil {
			return bad("listed %s: no verdict", k)
		}
		return nil
	}); err != nil {
		return err
	}
	return tx.Bucket(bucketProbes).ForEach(func(k, v []byte) error {
		did, _, vid, ok := parseProbeKey(k)
		if !ok {
			return bad("probe key %x: %v", k, errCorrupt)
		}
		var problems []string
		if domainIDs.Get(u32key(did)) == nil {
			problems = append(problems, fmt.Sprintf("domain id %d missing", did))
		}
		if _, err := s.str(uint64(vid)); err != nil {
			problems = append(problems, fmt.Sprintf("vantage: %v", err))
		}
		stored, err := decodeProbe(v)
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, o := range stored {
			if o.nameID != 0 {
				if _, err := s.str(o.nameID); err != nil {
					problems = append(problems, err.Error())
				}
			}
			if o.setID != 0 && sets.Get(u64key(o.setID)) == nil {
				problems = append(problems, fmt.Sprintf("answer set %d missing", o.setID))
			}
		}
		for _, p := range problems {
			if err := bad("probe %x: %s", k, p); err != nil {
				return err
			}
		}
		return nil
	})
}

// Compact rewrites the database at path into a new file with full pages
// and no free space, then renames it over the original. It opens path
// like any other command, so a database in use by a daemon is refused with
// ErrLocked; on any error the original is left as it was. It returns the
// sizes before and after.
func Compact(path string) (before, after int64, err error) {
	src, err := OpenExisting(path)
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".compact")
	os.Remove(tmp) // left by an interrupted compaction
	dst, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("compacting %s: %w", path, err)
	}
	fail := func(err error) (int64, int64, error) {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compacting %s: %w", path, err)
	}
	if err := guard(path, func() error { return bolt.Compact(dst, src.db.DB, 64<<20) }); err != nil {
		return fail(err)
	}
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	if err := dst.Close(); err != nil {
		return fail(err)
	}
	nfi, err := os.Stat(tmp)
	if err != nil {
		return fail(err)
	}
	// A process that opens path from now on gets the new file; the old one
	// goes when src closes it.
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return fi.Size(), nfi.Size(), nil
}
