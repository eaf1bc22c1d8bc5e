package results

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/fluxwatch/fluxwatch/classify"
)

// WriteDir writes the verdicts that each yields (in name order) in a
// directory format (misp, suricata) into the directory dir, which it
// creates or replaces whole (WriteDirAtomic): a reader sees the previous
// directory or the new one, never a mix. A name or address that cannot be
// written safely fails the export and leaves the previous directory.
func WriteDir(dir, format string, each func(yield func(classify.Verdict) error) error, opts Options) error {
	var newSink func(string, Options) (sink, func(), error)
	switch format {
	case "misp":
		newSink = newMISPSink
	case "suricata":
		newSink = newSuricataSink
	default:
		if slices.Contains(Formats, format) || slices.Contains(AddressFormats, format) {
			return fmt.Errorf("format %s is one file: write it with Write or WriteEach", format)
		}
		return errUnknownFormat(format)
	}
	return WriteDirAtomic(dir, func(tmp string) error {
		s, cleanup, err := newSink(tmp, opts)
		if err != nil {
			return err
		}
		defer cleanup()
		return feed(each, format, opts, s)
	})
}

// WriteDirAtomic builds a directory with write, which fills the empty
// directory it is given, and puts it in place of path. It is built beside
// path (in a temporary directory named .BASE.tmp-*), its files synced;
// then, if path exists, the two are swapped in one step (Linux's
// renameat2 with RENAME_EXCHANGE): whoever opens path, or a file in it,
// finds the previous directory or the new one, whole. The previous one is
// kept beside it as .BASE.prev until the next write replaces it, so a
// reader that resolved path just before the swap can still read it. Where
// the kernel or file system cannot swap, the previous directory is
// renamed to .BASE.prev and the new one into place: for that instant path
// is missing, but never partial. On error the previous directory is left
// in place and the temporary one removed.
func WriteDirAtomic(path string, write func(dir string) error) (err error) {
	path = filepath.Clean(path)
	parent, base := filepath.Split(path)
	if base == "." || base == ".." || base == string(filepath.Separator) || base == "" {
		return fmt.Errorf("writing %s: not a directory name", path)
	}
	if parent == "" {
		parent = "."
	}
	if fi, err := os.Lstat(path); err == nil && !fi.IsDir() {
		return fmt.Errorf("writing %s: it exists and is not a directory", path)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err = write(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = syncDir(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = swapDir(tmp, path, filepath.Join(parent, "."+base+".prev")); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	syncDir(parent) // make the renames durable; best effort, as in WriteFileAtomic
	return nil
}

// swapDir puts the complete directory tmp in place of path and keeps what
// was there as prev.
func swapDir(tmp, path, prev string) error {
	err := os.Rename(tmp, path) // when path is missing (or an empty directory)
	if err == nil || !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOTEMPTY) {
		return err
	}
	if err := os.RemoveAll(prev); err != nil {
		return err
	}
	switch err := exchange(tmp, path); {
	case err == nil:
		return os.Rename(tmp, prev) // tmp is now the previous directory
	case !errors.Is(err, errors.ErrUnsupported):
		return err
	}
	if err := os.Rename(path, prev); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		if rerr := os.Rename(prev, path); rerr != nil {
			return fmt.Errorf("%w (and putting the previous directory back from %s: %v)", err, prev, rerr)
		}
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeFile writes one file of a directory being built, synced.
func writeFile(dir, name string, write func(io.Writer) error) error {
	f, err := createFile(dir, name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.abort()
		return err
	}
	return f.commit()
}

// outFile is a buffered file of a directory being built.
type outFile struct {
	*bufio.Writer
	f *os.File
}

func createFile(dir, name string) (*outFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &outFile{Writer: bufio.NewWriter(f), f: f}, nil
}

// commit flushes, syncs and closes the file.
func (o *outFile) commit() error {
	err := o.Flush()
	if err == nil {
		err = o.f.Chmod(0o644) // whatever the umask
	}
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.f.Name(), err)
	}
	return nil
}

// abort closes the file; the directory it is in is about to be removed.
func (o *outFile) abort() { o.f.Close() }
