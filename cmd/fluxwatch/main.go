// Command fluxwatch finds fast-flux domains by measuring them: it resolves
// seeded domains again and again through many vantage resolvers, keeps the
// answers over time, classifies domains whose answers rotate across
// unrelated networks, and publishes blocklists.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/daemon"
)

// errUsage marks errors caused by the command line; they exit with status 2.
var errUsage = errors.New("usage")

// isUsage says whether err was caused by the command line or the config
// file: errUsage, or the daemon's daemon.ErrUsage.
func isUsage(err error) bool { return errors.Is(err, errUsage) || errors.Is(err, daemon.ErrUsage) }

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
	if code := reportError(os.Stderr, err); code != 0 {
		os.Exit(code)
	}
}

// reportError prints err for a person, once, and returns the exit status
// (exitStatus).
func reportError(w io.Writer, err error) int {
	code, msg := exitStatus(err)
	if msg != "" {
		fmt.Fprintf(w, "fluxwatch: %s\n", msg)
	}
	return code
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
	return runWith(ctx, args, &stdio{in: stdin, out: stdout, err: stderr})
}

// runWith runs a command line with the given streams. A command that
// finds its database held by another process is carried out there.
func runWith(ctx context.Context, args []string, std *stdio) error {
	err := execute(ctx, args, std)
	var held *heldError
	if errors.As(err, &held) {
		return held.forward(ctx, std)
	}
	return err
}

// execute runs a command line with the streams and clock of std, here.
func execute(ctx context.Context, args []string, std *stdio) error {
	root := newRoot(std)
	root.SetArgs(oneDashLong(root, args)) // never nil: cobra would read os.Args
	cmd, err := root.ExecuteContextC(ctx)
	if isUsage(err) && cmd != nil {
		return &usageError{err: err, command: cmd.CommandPath()}
	}
	return err
}

// oneDashLong returns args with -name and -name=value written --name and
// --name=value where name is a long flag of the command the line runs:
// fluxwatch once parsed with Go's flag package, which takes both, and
// scripts written then keep working.
func oneDashLong(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		cmd = root
	}
	lookup := func(name string) *pflag.Flag {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f
		}
		return cmd.InheritedFlags().Lookup(name)
	}
	shorthand := func(c string) *pflag.Flag {
		if f := cmd.Flags().ShorthandLookup(c); f != nil {
			return f
		}
		return cmd.InheritedFlags().ShorthandLookup(c)
	}
	// takesNext: a flag given without =value takes the next word as its
	// value, which is never rewritten (--reason -json).
	takesNext := func(f *pflag.Flag, hasValue bool) bool { return f != nil && !hasValue && f.NoOptDefVal == "" }
	out := make([]string, 0, len(args))
	value := false
	for i, a := range args {
		switch {
		case value:
			value = false
		case a == "--":
			return append(out, args[i:]...)
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			value = takesNext(lookup(name), hasValue)
		case len(a) > 1 && a[0] == '-':
			name, _, hasValue := strings.Cut(a[1:], "=")
			if f := lookup(name); len(name) > 1 && f != nil {
				a = "-" + a
				value = takesNext(f, hasValue)
			} else if len(name) == 1 {
				value = takesNext(shorthand(name), hasValue)
			}
		}
		out = append(out, a)
	}
	return out
}

// flush flushes a command's buffered output when it returns, and makes
// a write that failed (a full disk, a closed pipe) its error: a command
// whose output was lost has not done its work.
func flush(w *bufio.Writer, err *error) {
	if ferr := w.Flush(); *err == nil && ferr != nil {
		*err = fmt.Errorf("writing the output: %w", ferr)
	}
}

// stdio carries a command's standard streams, and its clock.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	// now, if set, replaces the wall clock of the daemon's jobs (tests
	// run it on a simulated world's accelerated clock).
	now func() time.Time
	// held is set when the command runs for a client of the control
	// socket: the database is the holder's open store.
	held *holding
	// dir, with held, is the client's working directory: the relative
	// paths of its config file are relative to it.
	dir string
}

func (s *stdio) clock() func() time.Time {
	if s.now != nil {
		return s.now
	}
	return time.Now
}
