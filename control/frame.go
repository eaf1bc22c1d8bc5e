package control

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// A run's response is a sequence of frames: one byte saying what the frame
// carries, four bytes of big-endian length, then that many bytes. Output
// is carried as bytes (a command may write binary to its standard
// output), and the exit frame, always last, as JSON.
const (
	frameStdout byte = 'o'
	frameStderr byte = 'e'
	frameExit   byte = 'x'
)

// maxFrame bounds one frame; a writer splits longer writes.
const maxFrame = 1 << 20

// frameWriter writes frames to an HTTP response, flushing each so the
// client sees output as the command makes it. It is safe for concurrent
// use: a command may write to its stdout and stderr from goroutines.
type frameWriter struct {
	mu  sync.Mutex
	w   io.Writer
	rc  *http.ResponseController
	err error
}

func (f *frameWriter) frame(kind byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.err == nil {
		n := min(len(p), maxFrame)
		var hdr [5]byte
		hdr[0] = kind
		binary.BigEndian.PutUint32(hdr[1:], uint32(n))
		if _, f.err = f.w.Write(hdr[:]); f.err != nil {
			break
		}
		if _, f.err = f.w.Write(p[:n]); f.err != nil {
			break
		}
		if p = p[n:]; len(p) == 0 {
			break
		}
	}
	if f.err == nil && f.rc != nil {
		f.err = f.rc.Flush()
	}
	return f.err
}

// stream is one of a command's output streams as frames.
type stream struct {
	f    *frameWriter
	kind byte
}

func (s stream) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.f.frame(s.kind, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// readFrame reads one frame.
func readFrame(r io.Reader) (kind byte, p []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("control: frame of %d bytes (at most %d)", n, maxFrame)
	}
	p = make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return hdr[0], p, nil
}
