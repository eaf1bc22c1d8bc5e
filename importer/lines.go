package importer

import (
	"bufio"
	"bytes"
	"io"
)

// lineReader yields the lines of an input one at a time in constant
// memory. "\n", "\r\n" and a lone "\r" each end a line, so logs written on
// any system read the same. A line longer than max bytes is skipped up to
// its end and reported through tooLong instead of being returned.
type lineReader struct {
	sc  *bufio.Scanner
	max int
	num int // 1-based number of the line last returned

	skipping bool // inside a line already known to be too long
	afterCR  bool // the last terminator was a '\r' at the end of the data seen
	tooLong  bool // the line last returned was too long (its text is empty)
}

func newLineReader(r io.Reader, max int) *lineReader {
	lr := &lineReader{max: max}
	lr.sc = bufio.NewScanner(r)
	// The buffer may grow to one byte past max: a line that fills it
	// without ending is known to be too long, and split skips it.
	lr.sc.Buffer(make([]byte, 0, min(max+1, 64<<10)), max+1)
	lr.sc.Split(lr.split)
	return lr
}

// next returns the next line without its terminator, or ok false at the end
// of the input (then err says whether that end was an error). The line is
// valid until the next call.
func (lr *lineReader) next() (line []byte, ok bool) {
	if !lr.sc.Scan() {
		return nil, false
	}
	lr.num++
	return lr.sc.Bytes(), true
}

func (lr *lineReader) err() error { return lr.sc.Err() }

func (lr *lineReader) split(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if lr.afterCR && len(data) > 0 {
		lr.afterCR = false
		if data[0] == '\n' {
			return 1, nil, nil // the second half of a "\r\n" split across reads
		}
	}
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	i := bytes.IndexAny(data, "\r\n")
	if i < 0 {
		switch {
		case atEOF: // a last line without terminator
			return len(data), lr.token(data), nil
		case len(data) > lr.max:
			lr.skipping = true
			return len(data), nil, nil
		default:
			return 0, nil, nil // ask for more
		}
	}
	advance = i + 1
	if data[i] == '\r' {
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				advance++
			}
		} else if !atEOF {
			lr.afterCR = true
		}
	}
	return advance, lr.token(data[:i]), nil
}

// token returns a complete line, or an empty one marked tooLong.
func (lr *lineReader) token(line []byte) []byte {
	lr.tooLong = lr.skipping || len(line) > lr.max
	lr.skipping = false
	if lr.tooLong {
		return []byte{}
	}
	return line
}
