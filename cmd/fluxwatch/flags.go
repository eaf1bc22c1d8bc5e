package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/daemon"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/storage"
)

// settings are the flags of a command. Flags that stand for config keys are
// registered by groups bound to a Config: cobra parses them into a scratch
// Config, which only tells which were given; load replays those onto the
// Config loaded from the file, so that defaults, file and flags layer in
// that order.
type settings struct {
	fs         *pflag.FlagSet // the command's flags; once parsed, the root's persistent ones too
	configPath string         // the --config file, as of the last load
	scratch    *config.Config
	groups     []func(*pflag.FlagSet, *config.Config)
	std        *stdio
	cmd        *cobra.Command
	// fileArgs says the arguments are files (seeds add): made absolute
	// when the command runs through the database's holder.
	fileArgs bool
}

// newFlags returns the settings of cmd. The config flags every command
// takes (--db, --log-level, --log-format) are the root's persistent flags,
// registered once by newRoot; they are replayed like any group.
func newFlags(cmd *cobra.Command, std *stdio) *settings {
	return &settings{fs: cmd.Flags(), scratch: config.Default(), std: std, cmd: cmd,
		groups: []func(*pflag.FlagSet, *config.Config){rootFlags}}
}

// rootFlags registers the config flags of every command.
func rootFlags(fs *pflag.FlagSet, c *config.Config) {
	fs.StringVar(&c.DB, "db", c.DB, "database `path` (env FLUXWATCH_DB)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json (one JSON object per line)")
}

// group registers config flags.
func (s *settings) group(register func(*pflag.FlagSet, *config.Config)) {
	s.groups = append(s.groups, register)
	register(s.fs, s.scratch)
}

// crawlFlags adds the flags that shape measurement.
func (s *settings) crawlFlags() {
	s.group(func(fs *pflag.FlagSet, c *config.Config) {
		fs.StringArrayVar(&c.Resolvers, "resolver", c.Resolvers, "vantage resolver `ADDR[:PORT]` (repeatable)")
		fs.StringVar(&c.ResolversFile, "resolvers", c.ResolversFile, "`file` of vantage resolvers, one ADDR[:PORT] a line")
		fs.Float64Var(&c.QPS, "qps", c.QPS, "queries per second per vantage (0 lifts the limit: only for your own servers)")
		fs.Float64Var(&c.GlobalQPS, "global-qps", c.GlobalQPS, "queries per second over all vantages (0: no global limit)")
		fs.IntVar(&c.Workers, "workers", c.Workers, "fix the probes in flight per vantage (0: as many as the rate and the latency need)")
		fs.IntVar(&c.MaxInFlight, "max-in-flight", c.MaxInFlight, "most probes in flight per vantage (0: the default, 4096)")
		fs.StringVar(&c.Canary, "canary", c.Canary, "`name` whose SOA decides whether a silent vantage is down (default: the root zone)")
		fs.StringVar(&c.Engine, "engine", c.Engine, "query path: sockets (long-lived UDP sockets) or naive (a new socket per query, for comparison)")
		fs.IntVar(&c.Procs, "procs", c.Procs, "CPUs running fluxwatch's own code at once (GOMAXPROCS); 0: half the CPUs, at least one")
		fs.BoolVar(&c.RandomizeCase, "randomize-case", c.RandomizeCase, "0x20: mix the case of each question and accept only answers that echo it")
		durationVar(fs, &c.Timeout, "timeout", c.Timeout, "timeout of one query attempt")
		fs.IntVar(&c.Retries, "retries", c.Retries, "extra attempts after a timeout, made while the vantage answers other queries")
		fs.StringSliceVar(&c.QTypes, "qtypes", c.QTypes, "query `types` to ask, comma-separated")
		fs.BoolVar(&c.NSHosts, "ns-hosts", c.NSHosts, "also resolve the addresses of each domain's name servers")
		fs.BoolVar(&c.Delegation, "delegation", c.Delegation, "also ask the parent zone's servers for each domain's NS set and glue")
		fs.IntVar(&c.ParentPort, "parent-port", c.ParentPort, "port to ask parent zone servers on (the simulated world's registry uses another)")
	})
}

// classifyFlags adds the flags that shape classification.
func (s *settings) classifyFlags() {
	s.group(func(fs *pflag.FlagSet, c *config.Config) {
		fs.StringArrayVar(&c.ASNDB, "asn-db", c.ASNDB, "IP-to-ASN `file`: iptoasn TSV, ip-location-db CSV (.gz allowed) or .mmdb (repeatable)")
		fs.StringArrayVar(&c.CountryDB, "country-db", c.CountryDB, "IP-to-country `file`: ip-location-db CSV or .mmdb (repeatable)")
		fs.StringArrayVar(&c.Allowlist, "allowlist", c.Allowlist, "`file` of names never listed: plain names or rank,domain CSV (repeatable)")
		fs.StringVar(&c.CDNSuffixes, "cdn-suffixes", c.CDNSuffixes, "`file` of CDN zones replacing the built-in list")
		fs.BoolVar(&c.Cymru, "cymru", c.Cymru, "look up addresses the tables miss in Team Cymru's DNS service (online)")
		fs.BoolVar(&c.ListWithoutIPTables, "list-without-ip-tables", c.ListWithoutIPTables, "list flux judged without an IP-to-ASN table (by default it is not listed)")
		durationVar(fs, &c.Window, "window", c.Window, "classify over the measurements of this last period")
		durationVar(fs, &c.ExpireAfter, "expire-after", c.ExpireAfter, "a listing lasts this long after the last flux verdict")
	})
}

// load reads the config file (again, for the daemon's SIGHUP) and replays
// the flags given over it.
func (s *settings) load() (*config.Config, error) {
	s.configPath, _ = s.fs.GetString("config")
	cfg := config.Default()
	if s.configPath != "" {
		var err error
		if cfg, err = config.Load(s.configPath); err != nil {
			return nil, err
		}
		if s.std != nil && s.std.dir != "" {
			// Run for a client elsewhere: its config's paths are its own.
			cfg.Rebase(s.std.dir)
		}
	}
	replay := pflag.NewFlagSet("", pflag.ContinueOnError)
	for _, register := range s.groups {
		register(replay, cfg)
	}
	var err error
	s.fs.VisitAll(func(f *pflag.Flag) {
		to := replay.Lookup(f.Name)
		if !f.Changed || to == nil || err != nil {
			return // not given, or a command's own flag
		}
		if list, ok := f.Value.(pflag.SliceValue); ok {
			err = to.Value.(pflag.SliceValue).Replace(list.GetSlice())
			return
		}
		err = to.Value.Set(f.Value.String())
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := errors.Join(cfg.Validate(), daemon.CheckConfig(cfg)); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
}

// duration is the value of a duration flag. It takes what
// time.ParseDuration takes, but nothing negative: no interval, period or
// timeout of fluxwatch runs backwards.
type duration struct{ p *time.Duration }

func (d duration) Type() string { return "duration" }

// String leaves a zero default out of the help, as for the other types.
func (d duration) String() string {
	if *d.p == 0 {
		return "0"
	}
	return d.p.String()
}

func (d duration) Set(v string) error {
	t, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("want a duration such as 30m or 24h")
	}
	if t < 0 {
		return errors.New("want a duration of 0 or more, such as 30m or 24h")
	}
	*d.p = t
	return nil
}

// durationVar defines a duration flag that refuses negative values.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(duration{p}, name, usage)
}

// durationFlag is durationVar for a new variable.
func durationFlag(fs *pflag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	durationVar(fs, p, name, value, usage)
	return p
}

func logger(cfg *config.Config, std *stdio) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) // validated
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(std.err, opts))
	}
	return slog.New(slog.NewTextHandler(std.err, opts))
}

// openStore opens an existing database for a command that writes to it;
// a missing one is an error ("no database at PATH"), not created.
func openStore(cfg *config.Config) (*storage.Store, error) {
	return storage.OpenExisting(cfg.DB)
}

// openReader opens an existing database read-only, for a command that
// only reads: it creates and changes nothing and works on a file the user
// can only read.
func openReader(cfg *config.Config) (*storage.Store, error) {
	return storage.OpenReadOnly(cfg.DB)
}

// createStore opens the database, creating it if missing: for the
// commands that add data (seeds add, import, crawl, daemon).
func createStore(cfg *config.Config) (*storage.Store, error) {
	return storage.Open(cfg.DB)
}

// newClassifier builds the classifier cfg configures
// (classify.FromConfig).
func newClassifier(cfg *config.Config) (*classify.Classifier, error) {
	return classify.FromConfig(cfg)
}

// newScheduler builds the crawler and scheduler that cfg describes
// (scheduler.FromConfig). The returned function releases the query
// engine's sockets.
func newScheduler(cfg *config.Config, store *storage.Store, now func() time.Time, log *slog.Logger, observer scheduler.Observer) (*scheduler.Scheduler, []scheduler.Vantage, func(), error) {
	return scheduler.FromConfig(cfg, store, now, log, observer)
}
