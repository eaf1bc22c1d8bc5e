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
)

const usage = `fluxwatch: find fast-flux domains by measuring them.

Usage:
  fluxwatch <command> [flags] [arguments]

Commands:
  seeds add [--source NAME] FILE...   import domains to measure (- reads stdin)
  seeds list                          list the measured domains
  seeds remove NAME...                stop measuring domains (history is kept)
  import --format F FILE...           import dig logs, zdns, dnsx, passive DNS (cof) or jsonl observations
  export-observations [--out FILE]    write the stored observations as jsonl (for import elsewhere),
                                      or --format parquet --out DIR for Spark, DuckDB, ClickHouse
  crawl [--rounds N --interval D]     measure every domain through every vantage
  classify [--json] [--dry-run]       classify the measured domains
  export --format F --out FILE        write the blocklist (domains, hosts, rpz, dnsmasq, unbound,
                                      adblock, stix, misp, jsonl, csv) or the flux agents' addresses
                                      (ips, nftables, ipset, suricata)
  show DOMAIN                         print a domain's measured history
  report --out FILE [--domain D]      write a self-contained HTML report with charts
  blocklist list | diff | history D   what is listed and until when, what publishes changed
  blocklist delist | relist D...      take domains off the list by hand, or let them back
  daemon                              crawl, classify and publish on cron schedules
  agent --nats URL --name NAME        measure for a coordinator over NATS, through this host's resolvers
  status                              the daemon's jobs (last and next run), verdict counts, vantages
  db check | db compact               verify the database, or rewrite it without free space
  db backup --out FILE                a consistent copy of the database, checked
  db salvage --out NEW                copy what a damaged database still holds into a new one
  ipdb update [--dir DIR]             fetch the IP-to-ASN and country tables, check them, swap them in
  simnet                              serve the simulated DNS world until interrupted
  demo [--out DIR]                    run the whole pipeline against the simulated world
  eval [--seed N | --seeds 1-50] [--json]
                                      score the classifier against the simulated worlds' truth
  version                             print the version

Every command takes --config FILE (YAML) and --db PATH (default ./fluxwatch.db
or $FLUXWATCH_DB). Run 'fluxwatch <command> -h' for its flags.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

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
	if code, msg := exitStatus(err); code != 0 {
		if msg != "" {
			fmt.Fprintf(os.Stderr, "fluxwatch: %s\n", msg)
		}
		os.Exit(code)
	}
}

// run dispatches a command line. It is the whole program, minus the
// process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runWith(ctx, args, &stdio{in: stdin, out: stdout, err: stderr})
}

// runWith runs a command line with the given streams. A command that
// finds its database held by another process is carried out there.
func runWith(ctx context.Context, args []string, std *stdio) error {
	err := dispatch(ctx, args, std)
	var held *heldError
	if errors.As(err, &held) {
		return held.forward(ctx, std)
	}
	return err
}

// dispatch runs one command.
func dispatch(ctx context.Context, args []string, std *stdio) error {
	stdout, stderr := std.out, std.err
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "seeds":
		return cmdSeeds(ctx, rest, std)
	case "import":
		return cmdImport(ctx, rest, std)
	case "export-observations":
		return cmdExportObservations(ctx, rest, std)
	case "crawl":
		return cmdCrawl(ctx, rest, std)
	case "classify":
		return cmdClassify(ctx, rest, std)
	case "export":
		return cmdExport(ctx, rest, std)
	case "show":
		return cmdShow(ctx, rest, std)
	case "report":
		return cmdReport(ctx, rest, std)
	case "daemon":
		return cmdDaemon(ctx, rest, std)
	case "agent":
		return cmdAgent(ctx, rest, std)
	case "blocklist":
		return cmdBlocklist(ctx, rest, std)
	case "status":
		return cmdStatus(ctx, rest, std)
	case "simnet":
		return cmdSimnet(ctx, rest, std)
	case "db":
		return cmdDB(ctx, rest, std)
	case "ipdb":
		return cmdIPDB(ctx, rest, std)
	case "eval":
		return cmdEval(ctx, rest, std)
	case "demo":
		return cmdDemo(ctx, rest, std)
	case "version":
		fmt.Fprintln(stdout, "fluxwatch", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
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
