// Package importer reads DNS measurements made by other tools, and
// fluxwatch's own observation export, as obs.Probe values, so that imported
// data goes through the same storage, classifier and reports as a crawl.
//
// Each supported format (dig, zdns, dnsx, cof, jsonl) is read as a stream in
// constant memory: one line at a time, lines longer than a bound skipped and
// reported. Every lookup event in the input becomes one probe, stamped with
// the lookup's own time and the vantage that answered it (or the one given
// in Options). A line that cannot be used is reported as a LineError
// ("file:line: reason") and reading goes on; only an error of the input
// itself, or one returned by the caller's callback, stops it.
//
// The JSON keys of the jsonl format (Encode, Decode) are a contract,
// documented in the README: exports of one fluxwatch must import into
// another.
package importer

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// Format names.
const (
	Dig   = "dig"   // concatenated dig outputs
	ZDNS  = "zdns"  // zdns JSON lines (A, AAAA and NS modules)
	DNSX  = "dnsx"  // dnsx -json lines
	COF   = "cof"   // passive DNS, Common Output Format JSON lines
	JSONL = "jsonl" // fluxwatch export-observations
)

// Formats lists the format names Read accepts.
var Formats = []string{Dig, ZDNS, DNSX, COF, JSONL}

// DefaultMaxLine is the longest line read when Options.MaxLine is zero.
const DefaultMaxLine = 4 << 20

// Options tune Read. The zero value reads with the vantages the input
// names, times without a zone in UTC, and lines up to DefaultMaxLine.
type Options struct {
	// Vantage, if set, replaces the vantage every lookup names.
	Vantage string
	// Source names a passive DNS source: cof records without a sensor_id
	// get the vantage "pdns:"+Source ("pdns:cof" when empty).
	Source string
	// Location is the time zone of dig times written without one, or with
	// an abbreviation Read does not know unambiguously (such as CST);
	// nil means UTC.
	Location *time.Location
	// MaxLine is the longest line, in bytes, that is read (default
	// DefaultMaxLine); a longer one is skipped and reported.
	MaxLine int
}

// LineError is a line of an input that could not be imported.
type LineError struct {
	File   string // as given to Read; "-" is shown as "stdin"
	Line   int    // 1-based
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// Stats count what Read did with one input.
type Stats struct {
	Lines        int // lines read
	Probes       int // probes passed to the callback
	Observations int // observations in them
	Errors       int // line errors reported
	// Skipped counts records read without error that carry nothing
	// fluxwatch measures (a passive DNS MX record, a zdns MX result).
	Skipped int
}

// ErrFormat is returned by Read for a format name it does not know.
var ErrFormat = errors.New("unknown import format")

// Read parses r in format and calls probe with every lookup event, in
// input order, and bad with every line it cannot use (bad may be nil).
// name identifies r in line errors. Reading stops at the end of r, at an
// error reading r, or at the first error probe returns, which Read returns.
func Read(r io.Reader, name, format string, opts Options, probe func(obs.Probe) error, bad func(*LineError)) (Stats, error) {
	if !slices.Contains(Formats, format) {
		return Stats{}, fmt.Errorf("%w %q (want one of %s)", ErrFormat, format, strings.Join(Formats, ", "))
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = DefaultMaxLine
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if name == "" || name == "-" {
		name = "stdin"
	}
	in := &input{name: name, opts: opts, lines: newLineReader(r, opts.MaxLine), probe: probe, bad: bad}
	var err error
	switch format {
	case Dig:
		err = readDig(in)
	default:
		err = in.eachJSONLine(jsonLineParser(format, opts))
	}
	in.stats.Lines = in.lines.num
	if in.stopped != nil {
		return in.stats, in.stopped
	}
	if err == nil {
		err = in.lines.err()
	}
	if err != nil {
		return in.stats, fmt.Errorf("reading %s: %w", name, err)
	}
	return in.stats, nil
}

// input is one input being read.
type input struct {
	name    string
	opts    Options
	lines   *lineReader
	probe   func(obs.Probe) error
	bad     func(*LineError)
	stats   Stats
	stopped error // returned by probe: Read returns it as it is
}

// emit passes a probe to the caller.
func (in *input) emit(p obs.Probe) error {
	if y := p.Start.Year(); y < 1970 || y > 2200 {
		// Storage keys probes by Unix nanoseconds.
		in.fail(in.lines.num, "%s: time %s out of range", p.Domain, p.Start.Format(time.RFC3339))
		return nil
	}
	in.stats.Probes++
	in.stats.Observations += len(p.Observations)
	if err := in.probe(p); err != nil {
		in.stopped = err
		return err
	}
	return nil
}

// fail reports a line error.
func (in *input) fail(line int, format string, args ...any) {
	in.stats.Errors++
	if in.bad != nil {
		in.bad(&LineError{File: in.name, Line: line, Reason: fmt.Sprintf(format, args...)})
	}
}

// tooLong reports the line last read as too long.
func (in *input) tooLong() {
	in.fail(in.lines.num, "line longer than %d bytes", in.opts.MaxLine)
}

// Open opens a file for Read: "-" is stdin, and gzip-compressed content
// (whatever the file's name) is decompressed as it is read.
func Open(path string, stdin io.Reader) (io.ReadCloser, error) {
	var r io.Reader
	var f *os.File
	if path == "-" {
		r = stdin
	} else {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err
		}
		r = f
	}
	br := bufio.NewReaderSize(r, 64<<10)
	closer := func() error {
		if f != nil {
			return f.Close()
		}
		return nil
	}
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			closer()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return readCloser{zr, func() error { zr.Close(); return closer() }}, nil
	}
	return readCloser{br, closer}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }
