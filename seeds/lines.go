package seeds

import (
	"bufio"
	"bytes"
	"io"
)

// MaxLineLen is the longest input line Parse reads, in bytes, not counting
// the line ending. A longer line is reported as a Reject and skipped; it does
// not stop parsing.
const MaxLineLen = 64 * 1024

// lineReader reads lines in constant memory. Unlike a plain bufio.Scanner,
// which gives up with bufio.ErrTooLong, it reports an over-long line as
// truncated and resumes at the next line.
type lineReader struct {
	sc        *bufio.Scanner
	max       int
	skipping  bool // discarding the rest of an over-long line
	truncated bool // the last token returned was cut at max bytes
}

func newLineReader(r io.Reader, max int) *lineReader {
	lr := &lineReader{sc: bufio.NewScanner(r), max: max}
	// One byte more than max, so a line of exactly max bytes and its newline
	// still fit in the buffer.
	lr.sc.Buffer(make([]byte, 0, min(4096, max+1)), max+1)
	lr.sc.Split(lr.split)
	return lr
}

// next returns the next line without its line ending, and whether it was
// cut short. ok is false at the end of the input or on a read error.
func (lr *lineReader) next() (line []byte, truncated, ok bool) {
	if !lr.sc.Scan() {
		return nil, false, false
	}
	return lr.sc.Bytes(), lr.truncated, true
}

// err returns the read error, if any, that ended the input.
func (lr *lineReader) err() error { return lr.sc.Err() }

func (lr *lineReader) split(data []byte, atEOF bool) (int, []byte, error) {
	if lr.skipping {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			lr.skipping = false
			return i + 1, nil, nil
		}
		return len(data), nil, nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 && i <= lr.max {
		lr.truncated = false
		return i + 1, dropCR(data[:i]), nil
	}
	if len(data) > lr.max {
		lr.truncated = true
		lr.skipping = true
		return lr.max, data[:lr.max], nil
	}
	if atEOF && len(data) > 0 {
		lr.truncated = false
		return len(data), dropCR(data), nil
	}
	return 0, nil, nil
}

func dropCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}
