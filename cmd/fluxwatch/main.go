// Command fluxwatch finds fast-flux domains by measuring them: it resolves
// seeded domains again and again through many vantage resolvers, keeps the
// answers over time, classifies domains whose answers rotate across
// unrelated networks, and publishes blocklists.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/fluxwatch/fluxwatch/storage"
)

// errUsage marks errors caused by the command line; they exit with status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// FLUXWATCH_CPUPROFILE=FILE writes a CPU profile of the whole run, for
	// `go tool pprof`.
	if path := os.Getenv("FLUXWATCH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	applyProcs = true
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	pprof.StopCPUProfile()
	// FLUXWATCH_MEMPROFILE=FILE writes what the run allocated (go tool
	// pprof -sample_index=alloc_space FILE).
	if path := os.Getenv("FLUXWATCH_MEMPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	if status := reportError(os.Stderr, err); status != 0 {
		os.Exit(status)
	}
}

// reportError prints err for a person, once, and returns the exit status: 0
// when the command did all it was asked, 1 when it failed, 2 when the
// command line was wrong.
func reportError(w io.Writer, err error) int {
	var damaged *storage.DamagedError
	var usage *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &damaged):
		// One line that says which file and what to do, whatever the
		// command was doing when it met the damage.
		fmt.Fprintf(w, "fluxwatch: %v\n", damaged)
		return 1
	case errors.As(err, &usage):
		fmt.Fprintf(w, "fluxwatch: %v\nRun '%s --help' for usage.\n", usage.err, usage.command)
		return 2
	case errors.Is(err, errUsage):
		fmt.Fprintf(w, "fluxwatch: %v\n", err)
		return 2
	default:
		fmt.Fprintf(w, "fluxwatch: %v\n", err)
		return 1
	}
}

// usageError is a usage error with the command whose help explains it.
type usageError struct {
	err     error
	command string // the command's path: "fluxwatch seeds add"
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run runs a command line. It is the whole program, minus the process:
// tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return execute(ctx, args, &stdio{in: stdin, out: stdout, err: stderr})
}

// execute runs a command line with the streams and clock of std.
func execute(ctx context.Context, args []string, std *stdio) error {
	root := newRoot(std)
	root.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	cmd, err := root.ExecuteContextC(ctx)
	if errors.Is(err, errUsage) && cmd != nil {
		return &usageError{err: err, command: cmd.CommandPath()}
	}
	return err
}

// stdio carries a command's standard streams, and its clock.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	// now, if set, replaces the wall clock of the daemon's jobs (tests
	// run it on a simulated world's accelerated clock).
	now func() time.Time
}

func (s *stdio) clock() func() time.Time {
	if s.now != nil {
		return s.now
	}
	return time.Now
}
