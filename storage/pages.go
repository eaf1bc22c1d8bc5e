package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"os"
	"slices"
)

// This file reads bbolt's page format itself, with ReadAt on the file
// rather than through bbolt's memory map: a damaged page is then an error
// with a page number, never a panic or a fault, whatever it holds. Open
// uses it to look at a file before handing it to bbolt, Check to walk
// every page before bbolt's own check (which runs on a goroutine of its
// own, where a fault on a page beyond the end of a cut file could not be
// recovered), and Salvage to read what can still be read.
//
// The layout is bbolt's format version 2, little-endian as on amd64 and
// arm64: a page is a 16-byte header (id uint64, flags uint16, count
// uint16, overflow uint32) and count 16-byte elements; an element's key
// (and a leaf's value after it) lies pos bytes from the element itself.

const (
	pageHeaderSize = 16
	elementSize    = 16
	bucketHeader   = 16 // root page id, sequence

	branchPage   = 0x01
	leafPage     = 0x02
	metaPage     = 0x04
	freelistPage = 0x10

	bucketLeafFlag = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)
)

// meta is one of the file's two meta pages.
type meta struct {
	pageSize       uint32
	root, sequence uint64
	freelist       uint64
	hwm            uint64 // the high water mark: pages [0, hwm) are in use
	txid           uint64
	err            error // why the page is invalid
}

func readMeta(f io.ReaderAt, off int64) meta {
	var b [pageHeaderSize + 64]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return meta{err: fmt.Errorf("reading the meta page at %d: %v", off, err)}
	}
	le := binary.LittleEndian
	m := b[pageHeaderSize:]
	out := meta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), sequence: le.Uint64(m[24:]),
		freelist: le.Uint64(m[32:]), hwm: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case le.Uint16(b[8:]) != metaPage:
		out.err = fmt.Errorf("meta page at %d has page flags %#x", off, le.Uint16(b[8:]))
	case le.Uint32(m) != boltMagic:
		out.err = fmt.Errorf("meta page at %d: not a bbolt file (magic %#x)", off, le.Uint32(m))
	case le.Uint32(m[4:]) != boltVersion:
		out.err = fmt.Errorf("meta page at %d: bbolt format version %d", off, le.Uint32(m[4:]))
	case le.Uint64(m[56:]) != h.Sum64():
		out.err = fmt.Errorf("meta page at %d fails its checksum", off)
	case out.pageSize < 512 || out.pageSize&(out.pageSize-1) != 0:
		out.err = fmt.Errorf("meta page at %d: page size %d", off, out.pageSize)
	}
	return out
}

// boltFile is a bbolt file read with ReadAt.
type boltFile struct {
	f        *os.File
	size     int64
	meta     meta    // the meta page bbolt uses: the valid one with the higher txid
	metas    [2]meta // both, as read
	pageSize int64
}

// openBoltFile reads a file's meta pages and checks what can be checked
// without walking the tree: a valid meta page, a file long enough for
// every page in use, the freelist page and the root page being what the
// meta page says. Damage is a *DamagedError.
func openBoltFile(path string) (*boltFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	bf := &boltFile{f: f, size: fi.Size()}
	if err := bf.readMetas(path); err != nil {
		f.Close()
		return nil, err
	}
	if err := bf.inspect(path); err != nil {
		f.Close()
		return nil, err
	}
	return bf, nil
}

func (bf *boltFile) Close() error { return bf.f.Close() }

// readMetas reads both meta pages and picks the one bbolt would use.
func (bf *boltFile) readMetas(path string) error {
	if bf.size == 0 {
		return damaged(path, "empty file")
	}
	bf.metas[0] = readMeta(bf.f, 0)
	ps := int64(bf.metas[0].pageSize)
	if bf.metas[0].err != nil {
		ps = int64(os.Getpagesize())
	}
	bf.metas[1] = readMeta(bf.f, ps)
	if bf.metas[0].err != nil && bf.metas[1].err != nil {
		// bbolt finds the second meta page with the first's page size,
		// else tries the usual ones.
		for _, try := range []int64{4096, 8192, 16384, 32768, 65536} {
			if m := readMeta(bf.f, try); m.err == nil && int64(m.pageSize) == try {
				bf.metas[1] = m
				break
			}
		}
	}
	switch m0, m1 := bf.metas[0], bf.metas[1]; {
	case m0.err != nil && m1.err != nil:
		return damaged(path, "both meta pages are invalid: %v; %v", m0.err, m1.err)
	case m0.err != nil:
		bf.meta = m1
	case m1.err != nil:
		bf.meta = m0
	case m1.txid > m0.txid:
		bf.meta = m1
	default:
		bf.meta = m0
	}
	bf.pageSize = int64(bf.meta.pageSize)
	return nil
}

// inspect checks what can be checked without walking the tree.
func (bf *boltFile) inspect(path string) error {
	if need := int64(bf.meta.hwm) * bf.pageSize; bf.meta.hwm > 1<<40 || need > bf.size {
		return damaged(path, "cut short: the file is %d bytes, its %d pages need %d", bf.size, bf.meta.hwm, need)
	}
	if bf.meta.freelist != noFreelist {
		if _, err := bf.pageOf(bf.meta.freelist, freelistPage); err != nil {
			return damaged(path, "freelist: %v", err)
		}
	}
	if _, err := bf.pageOf(bf.meta.root, branchPage|leafPage); err != nil {
		return damaged(path, "root bucket: %v", err)
	}
	return nil
}

// page is one page (with its overflow) as read from the file.
type page struct {
	id       uint64
	flags    uint16
	count    int
	overflow uint32
	b        []byte
}

// pageOf reads page id, which must have one of the flags in want.
func (bf *boltFile) pageOf(id uint64, want uint16) (page, error) {
	if id < 2 || id >= bf.meta.hwm {
		return page{}, fmt.Errorf("page %d: out of range [2, %d)", id, bf.meta.hwm)
	}
	var h [pageHeaderSize]byte
	if _, err := bf.f.ReadAt(h[:], int64(id)*bf.pageSize); err != nil {
		return page{}, bf.readError(id, err)
	}
	le := binary.LittleEndian
	p := page{id: le.Uint64(h[:]), flags: le.Uint16(h[8:]), count: int(le.Uint16(h[10:])), overflow: le.Uint32(h[12:])}
	switch {
	case p.id != id:
		return page{}, fmt.Errorf("page %d: its header says page %d", id, p.id)
	case p.flags&want == 0 || p.flags&(p.flags-1) != 0:
		return page{}, fmt.Errorf("page %d: page flags %#x where %s was expected", id, p.flags, pageKinds(want))
	case id+uint64(p.overflow) >= bf.meta.hwm:
		return page{}, fmt.Errorf("page %d: %d overflow pages run past the last page in use (%d)", id, p.overflow, bf.meta.hwm-1)
	}
	if p.flags == freelistPage {
		return p, nil // only its header is needed
	}
	p.b = make([]byte, int64(p.overflow+1)*bf.pageSize)
	if _, err := bf.f.ReadAt(p.b, int64(id)*bf.pageSize); err != nil {
		return page{}, bf.readError(id, err)
	}
	if pageHeaderSize+p.count*elementSize > len(p.b) {
		return page{}, fmt.Errorf("page %d: %d elements do not fit", id, p.count)
	}
	return p, nil
}

func (bf *boltFile) readError(id uint64, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("page %d: lies beyond the end of the file (%d bytes)", id, bf.size)
	}
	return fmt.Errorf("page %d: %v", id, err)
}

// under says where a page was reached from, for a problem's message.
func under(stack []uint64) string {
	if len(stack) == 0 {
		return ""
	}
	return fmt.Sprintf(" (under page %v)", stack)
}

func pageKinds(flags uint16) string {
	switch flags {
	case freelistPage:
		return "a freelist page"
	case branchPage | leafPage:
		return "a branch or leaf page"
	}
	return fmt.Sprintf("flags %#x", flags)
}

// element returns element i's key, and for a leaf its value and flags.
func (p page) element(i int) (key, value []byte, flags uint32, child uint64, err error) {
	le := binary.LittleEndian
	off := pageHeaderSize + i*elementSize
	e := p.b[off : off+elementSize]
	if p.flags == branchPage {
		pos, ksize := int(le.Uint32(e)), int(le.Uint32(e[4:]))
		start := off + pos
		if pos < 0 || ksize < 0 || start+ksize > len(p.b) || start < pageHeaderSize {
			return nil, nil, 0, 0, fmt.Errorf("page %d: element %d's key lies outside the page", p.id, i)
		}
		return p.b[start : start+ksize], nil, 0, le.Uint64(e[8:]), nil
	}
	flags = le.Uint32(e)
	pos, ksize, vsize := int(le.Uint32(e[4:])), int(le.Uint32(e[8:])), int(le.Uint32(e[12:]))
	start := off + pos
	if pos < 0 || ksize < 0 || vsize < 0 || start < pageHeaderSize || start+ksize+vsize > len(p.b) {
		return nil, nil, 0, 0, fmt.Errorf("page %d: element %d's key or value lies outside the page", p.id, i)
	}
	return p.b[start : start+ksize], p.b[start+ksize : start+ksize+vsize], flags, 0, nil
}

// inlinePage reads the page stored inside an inline bucket's value.
func inlinePage(v []byte) (page, error) {
	if len(v) < bucketHeader+pageHeaderSize {
		return page{}, errors.New("inline bucket too short")
	}
	le := binary.LittleEndian
	b := v[bucketHeader:]
	p := page{flags: le.Uint16(b[8:]), count: int(le.Uint16(b[10:])), b: b}
	if p.flags != leafPage || pageHeaderSize+p.count*elementSize > len(b) {
		return page{}, fmt.Errorf("inline bucket: page flags %#x, %d elements in %d bytes", p.flags, p.count, len(b))
	}
	return p, nil
}

// pageWalk collects what a walk of a tree found.
type pageWalk struct {
	bf       *boltFile
	seen     map[uint64]bool
	problems []error
	// leaf, if set, is called with each readable leaf's page id (0 for an
	// inline bucket) and elements; a leaf element with bucketLeafFlag is
	// a nested bucket.
	leaf func(pgid uint64, p page) error
	// visit, if set, is called with every page read.
	visit func(pgid uint64, p page)
}

// walk visits the tree rooted at page id in key order, reading each
// page once. A page that cannot be read is recorded in problems and its
// subtree skipped; the walk goes on with the rest.
func (w *pageWalk) walk(id uint64, stack []uint64) error {
	if w.seen[id] {
		w.problems = append(w.problems, fmt.Errorf("page %d: referenced twice%s", id, under(stack)))
		return nil
	}
	w.seen[id] = true
	p, err := w.bf.pageOf(id, branchPage|leafPage)
	if err != nil {
		w.problems = append(w.problems, fmt.Errorf("%v%s", err, under(stack)))
		return nil
	}
	for i := uint64(1); i <= uint64(p.overflow); i++ {
		w.seen[id+i] = true
	}
	if w.visit != nil {
		w.visit(id, p)
	}
	if p.flags == leafPage {
		if w.leaf != nil {
			return w.leaf(id, p)
		}
		return nil
	}
	for i := range p.count {
		_, _, _, child, err := p.element(i)
		if err != nil {
			w.problems = append(w.problems, err)
			continue
		}
		if err := w.walk(child, append(stack, id)); err != nil {
			return err
		}
	}
	return nil
}

// bucketRoots reads the top-level buckets from the root page: name → the
// bucket's value (its header, and its page if inline).
func (bf *boltFile) bucketRoots(w *pageWalk) (map[string][]byte, error) {
	roots := map[string][]byte{}
	leaf := w.leaf
	w.leaf = func(_ uint64, p page) error {
		for i := range p.count {
			k, v, flags, _, err := p.element(i)
			if err != nil {
				w.problems = append(w.problems, fmt.Errorf("root bucket: %v", err))
				continue
			}
			if flags&bucketLeafFlag == 0 || len(v) < bucketHeader {
				w.problems = append(w.problems, fmt.Errorf("root bucket: %q is not a bucket", k))
				continue
			}
			roots[string(k)] = v
		}
		return nil
	}
	err := w.walk(bf.meta.root, nil)
	w.leaf = leaf
	return roots, err
}

// walkBucket walks one bucket given its value in its parent.
func (w *pageWalk) walkBucket(name string, v []byte) error {
	root := binary.LittleEndian.Uint64(v)
	if root != 0 {
		return w.walk(root, nil)
	}
	p, err := inlinePage(v)
	if err != nil {
		w.problems = append(w.problems, fmt.Errorf("bucket %s: %v", name, err))
		return nil
	}
	if w.leaf != nil {
		return w.leaf(0, p)
	}
	return nil
}

// walkPages checks the tree of every page in use: each page is what its
// parent says it is, lies within the file and is referenced once. It
// returns the problems found, at most max.
func (bf *boltFile) walkPages(max int) []error {
	w := &pageWalk{bf: bf, seen: map[uint64]bool{}}
	roots, _ := bf.bucketRoots(w)
	// Every element of every leaf must lie within its page (the page is
	// read already: this costs no I/O).
	w.leaf = func(pgid uint64, p page) error {
		for i := range p.count {
			if _, _, _, _, err := p.element(i); err != nil {
				w.problems = append(w.problems, fmt.Errorf("page %d: %v", pgid, err))
			}
		}
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(roots)) {
		w.walkBucket(name, roots[name])
		if len(w.problems) >= max {
			break
		}
	}
	if len(w.problems) > max {
		w.problems = w.problems[:max]
	}
	return w.problems
}

// FilePage is one page of a database file, as FilePages found it.
type FilePage struct {
	ID uint64
	// Kind is meta, freelist, branch or leaf.
	Kind string
	// Bucket is the top-level bucket a branch or leaf page belongs to
	// ("" for the root bucket's own pages).
	Bucket string
	// Keys are the keys on a leaf page, in order.
	Keys [][]byte
}

// FilePages maps the pages of the database file at path: its meta pages,
// its freelist page and every branch and leaf page with the bucket it
// belongs to, read with ReadAt (see pages.go). It is for looking at a
// file, and for tests that damage one page on purpose.
func FilePages(path string) ([]FilePage, error) {
	bf, err := openBoltFile(path)
	if err != nil {
		return nil, err
	}
	defer bf.Close()
	out := []FilePage{{ID: 0, Kind: "meta"}, {ID: 1, Kind: "meta"}}
	if bf.meta.freelist != noFreelist {
		out = append(out, FilePage{ID: bf.meta.freelist, Kind: "freelist"})
	}
	bucket := ""
	w := &pageWalk{bf: bf, seen: map[uint64]bool{}}
	w.visit = func(id uint64, p page) {
		fp := FilePage{ID: id, Kind: "branch", Bucket: bucket}
		if p.flags == leafPage {
			fp.Kind = "leaf"
			for i := range p.count {
				if k, _, _, _, err := p.element(i); err == nil {
					fp.Keys = append(fp.Keys, bytes.Clone(k))
				}
			}
		}
		out = append(out, fp)
	}
	roots, _ := bf.bucketRoots(w)
	for _, name := range slices.Sorted(maps.Keys(roots)) {
		bucket = name
		w.walkBucket(name, roots[name])
	}
	if len(w.problems) > 0 {
		return out, problems(path, w.problems)
	}
	return out, nil
}
