package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// RunFunc runs one command line for a client as the command would run on
// its own: it reads stdin, writes stdout and stderr, and returns the exit
// code and, for a failure, the one line the command would have printed.
// It is called concurrently, once per client.
type RunFunc func(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) (code int, message string)

// Server serves the control API of a held database.
type Server struct {
	path   string
	srv    *http.Server
	cancel context.CancelFunc
	served chan error

	closeOnce sync.Once
	closeErr  error
}

// Listen serves the control API on the Unix socket at path: run carries
// out the commands, holder is what /v1/holder says. A socket file left
// behind by a holder that died is replaced; one that a live process
// answers on is an error.
func Listen(path string, holder Holder, run RunFunc, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The owner only: a command through the socket runs as the holder.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/holder", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(holder)
	})
	mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		serveRun(w, r, run, log)
	})
	s := &Server{path: path, cancel: cancel, served: make(chan error, 1),
		srv: &http.Server{Handler: mux, BaseContext: func(net.Listener) context.Context { return base },
			ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops serving and removes the socket: commands still running are
// cancelled, and Close waits up to 30 s for them to end (one blocked on
// something that does not heed its context outlives it; the store it
// borrowed stays open until it ends). Only the first call does anything.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.closeErr = s.srv.Shutdown(ctx)
		if err := <-s.served; !errors.Is(err, http.ErrServerClosed) {
			s.closeErr = errors.Join(s.closeErr, err)
		}
	})
	return s.closeErr
}

// clearStale removes a socket file at path that no process answers on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control socket: %s exists and is not a socket", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("control socket: another process serves %s", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("control socket: removing the stale %s: %w", path, err)
	}
	return nil
}

func serveRun(w http.ResponseWriter, r *http.Request, run RunFunc, log *slog.Logger) {
	rc := http.NewResponseController(w)
	// The command may read its standard input while it writes output.
	rc.EnableFullDuplex()
	body := &io.LimitedReader{R: r.Body, N: maxHeader}
	dec := json.NewDecoder(body)
	var req Request
	if err := dec.Decode(&req); err != nil || len(req.Args) == 0 {
		http.Error(w, "want a JSON line with the args, then the standard input", http.StatusBadRequest)
		return
	}
	body.N = math.MaxInt64
	in := bufio.NewReader(io.MultiReader(dec.Buffered(), body))
	if b, err := in.Peek(1); err == nil && b[0] == '\n' {
		in.Discard(1) // the end of the header line
	}
	// The request body is read here, whether or not the command reads its
	// standard input: net/http notices a client that left only while the
	// body is read, and a client that gives up leaves the body cut short.
	// The command's context then ends.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stdin, pw := io.Pipe()
	defer stdin.Close()
	go func() {
		_, err := io.Copy(pw, in)
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			cancel()
		}
		pw.CloseWithError(err)
	}()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	fw := &frameWriter{w: w, rc: rc}
	log.Debug("control: running", "args", req.Args)
	code, msg := run(ctx, req, stdin, stream{fw, frameStdout}, stream{fw, frameStderr})
	b, _ := json.Marshal(exit{Code: code, Error: msg})
	if err := fw.frame(frameExit, b); err != nil {
		log.Debug("control: the client left before the end", "args", req.Args, "err", err)
	}
}
