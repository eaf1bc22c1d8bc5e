package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/control"
	"github.com/fluxwatch/fluxwatch/daemon"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The process that holds a database (the daemon, or a crawl) serves the
// control socket beside it, and the other commands run through it: a
// command that finds its database held sends its command line to the
// holder, which runs it against its open store and sends back the
// output and the exit code. The user never needs to know whether a
// daemon runs.

// holding is what the holder lends to the commands it runs for others.
type holding struct {
	control.Holder
	store *storage.Store
	now   func() time.Time
	// exclusive takes the holder's lock for a job that must not overlap
	// its own: "classify" (a classification stores verdicts and moves the
	// listings) or "list" (a delisting or relisting, never in the middle
	// of a publish). An error says the holder cannot run the job.
	exclusive func(job string) (unlock func(), err error)
	// status is the daemon's status; nil for a crawl.
	status func() daemon.Status
	// networks is what builds the flux networks of a classification of a
	// shard's database (daemon.NetworkBuilder); nil for a crawl.
	networks func() (classify.NetworkBuilder, error)
}

// throughHolder are the commands a holder runs for others.
var throughHolder = map[string]bool{"show": true, "networks": true, "status": true, "seeds": true, "blocklist": true,
	"export": true, "export-observations": true, "report": true, "classify": true, "db": true}

// serveControl serves the control socket of the database h holds, until
// the returned function is called. A socket that cannot be served (a path
// too long for a Unix socket, say) is logged, not fatal: the database then
// stays locked to other commands, as it was before there was a socket.
func serveControl(h *holding, log *slog.Logger) (stop func()) {
	path := control.SocketPath(h.DB)
	srv, err := control.Listen(path, h.Holder, h.run, log)
	if err != nil {
		log.Warn("no control socket: other commands cannot use the database while it is held", "err", err)
		return func() {}
	}
	log.Debug("control socket", "path", path)
	return func() {
		if err := srv.Close(); err != nil {
			log.Warn("closing the control socket", "err", err)
		}
	}
}

// run carries out one command line for a client of the control socket.
func (h *holding) run(ctx context.Context, req control.Request, stdin io.Reader, stdout, stderr io.Writer) (int, string) {
	if !throughHolder[req.Args[0]] {
		return exitStatus(fmt.Errorf("%w: %s cannot run while a %s holds the database", errUsage, req.Args[0], h.Kind))
	}
	defer defaultGCWhile()()
	std := &stdio{in: stdin, out: stdout, err: stderr, held: h, now: h.now, dir: req.Dir}
	return exitStatus(runWith(ctx, req.Args, std))
}

// exclusive takes the holder's lock for job when the command runs for a
// client of the control socket; on its own, a command holds the database
// and needs no lock.
func (s *stdio) exclusive(job string) (unlock func(), err error) {
	if s.held == nil || s.held.exclusive == nil {
		return func() {}, nil
	}
	return s.held.exclusive(job)
}

// heldError is returned by a command that found its database held: run
// then carries the command out through the holder.
type heldError struct {
	client *control.Client
	req    control.Request
}

func (e *heldError) Error() string { return "the database is held by another process" }

// forward runs the command in the holder and returns what it returned.
func (e *heldError) forward(ctx context.Context, std *stdio) error {
	code, msg, err := e.client.Run(ctx, e.req, std.in, std.out, std.err)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%v: the command was cancelled in the process that holds the database", context.Cause(ctx))
	}
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	return &exitError{code: code, msg: msg}
}

// exitError is a command's failure as the holder reported it.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Is lets a usage error through the holder be one here too.
func (e *exitError) Is(target error) bool { return target == errUsage && e.code == 2 }

// exitStatus is the exit status of a command's error, and what is
// printed for it: 0 when the command did all it was asked, 1 when it
// failed, 2 when the command line was wrong.
func exitStatus(err error) (code int, msg string) {
	var de *storage.DamagedError
	var ee *exitError
	var usage *usageError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &ee):
		return ee.code, ee.msg
	case errors.As(err, &de):
		// One line that says which file and what to do, whatever the
		// command was doing when it met the damage.
		return 1, de.Error()
	case errors.As(err, &usage):
		return 2, fmt.Sprintf("%v\nRun '%s --help' for usage.", usage.err, usage.command)
	case isUsage(err):
		return 2, err.Error()
	default:
		return 1, err.Error()
	}
}

// holderOf connects to the holder of the database at db, if one answers.
func holderOf(db string) (*control.Client, bool) {
	c, err := control.Dial(control.SocketPath(db))
	return c, err == nil
}

// through returns the store the holder lends, or, if another process
// holds the database, a heldError that sends the command there; ok false
// means no one holds it and the command opens the file itself.
func (s *settings) through(cfg *config.Config) (store *storage.Store, ok bool, err error) {
	if h := s.std.held; h != nil {
		return h.store.Retain(), true, nil
	}
	if c, held := holderOf(cfg.DB); held {
		args, err := s.forwardArgs(cfg)
		if err != nil {
			return nil, true, err
		}
		dir, err := os.Getwd()
		if err != nil {
			return nil, true, err
		}
		return nil, true, &heldError{client: c, req: control.Request{Args: args, Dir: dir}}
	}
	return nil, false, nil
}

// openReader opens an existing database read-only, for a command that
// only reads: it creates and changes nothing and works on a file the user
// can only read. A held database is read through its holder.
func (s *settings) openReader(cfg *config.Config) (*storage.Store, error) {
	if store, ok, err := s.through(cfg); ok {
		return store, err
	}
	return openReader(cfg)
}

// openStore opens an existing database for a command that writes to it,
// through its holder if it is held.
func (s *settings) openStore(cfg *config.Config) (*storage.Store, error) {
	if store, ok, err := s.through(cfg); ok {
		return store, err
	}
	return openStore(cfg)
}

// createStore opens the database, creating it if missing, through its
// holder if it is held.
func (s *settings) createStore(cfg *config.Config) (*storage.Store, error) {
	if store, ok, err := s.through(cfg); ok {
		return store, err
	}
	return createStore(cfg)
}

// namesPath reports whether a flag's value is a file or directory: the
// flags markFileFlags marks for completion. Their values are made absolute
// before a command line goes to the holder, which runs in another
// directory.
func namesPath(f *pflag.Flag) bool {
	_, file := f.Annotations[cobra.BashCompFilenameExt]
	_, dir := f.Annotations[cobra.BashCompSubdirsInDir]
	return file || dir
}

// forwardArgs is the command line as the holder must run it: the command
// words, every flag that was given (files made absolute, --db always
// given), then the arguments, files among them made absolute.
func (s *settings) forwardArgs(cfg *config.Config) ([]string, error) {
	args := strings.Fields(commandName(s.cmd))
	db, err := filepath.Abs(cfg.DB)
	if err != nil {
		return nil, err
	}
	args = append(args, "--db="+db)
	var ferr error
	s.fs.VisitAll(func(f *pflag.Flag) {
		if !f.Changed || f.Name == "db" {
			return
		}
		values := []string{f.Value.String()}
		if list, ok := f.Value.(pflag.SliceValue); ok {
			values = list.GetSlice()
		}
		for _, v := range values {
			if namesPath(f) && v != "-" && v != "" {
				if v, err = filepath.Abs(v); err != nil {
					ferr = err
				}
			}
			args = append(args, "--"+f.Name+"="+v)
		}
	})
	if ferr != nil {
		return nil, ferr
	}
	args = append(args, "--")
	for _, a := range s.fs.Args() {
		if s.fileArgs && a != "-" {
			if a, err = filepath.Abs(a); err != nil {
				return nil, err
			}
		}
		args = append(args, a)
	}
	return args, nil
}

// ownStore opens the database for a command that must hold it itself
// (crawl, daemon, import), creating it if missing. If another process
// holds it, the error says which.
func ownStore(ctx context.Context, cfg *config.Config, command string) (*storage.Store, error) {
	store, err := createStore(cfg)
	if errors.Is(err, storage.ErrLocked) {
		if c, ok := holderOf(cfg.DB); ok {
			if h, herr := c.Holder(ctx); herr == nil {
				return nil, fmt.Errorf("database %s is held by a %s (pid %d, since %s): %s needs it to itself; stop that %s first, or use another --db",
					cfg.DB, h.Kind, h.PID, stamp(h.Since), command, h.Kind)
			}
		}
	}
	return store, err
}

// hold makes this process the holder of store: it serves the control
// socket until the returned function is called.
func hold(kind string, cfg *config.Config, store *storage.Store, now func() time.Time, log *slog.Logger,
	exclusive func(string) (func(), error), status func() daemon.Status, networks func() (classify.NetworkBuilder, error)) (release func()) {
	db, err := filepath.Abs(cfg.DB)
	if err != nil {
		db = cfg.DB
	}
	h := &holding{Holder: control.Holder{Kind: kind, PID: os.Getpid(), Since: now().UTC(), DB: db},
		store: store, now: now, exclusive: exclusive, status: status, networks: networks}
	return serveControl(h, log)
}
