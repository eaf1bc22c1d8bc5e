package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/storage"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// settings are the flags shared by commands, layered over the config file.
type settings struct {
	fs         *flag.FlagSet
	configPath string
	cfg        config.Config // flag targets; copied over the loaded config when set
	resolvers  listFlag
	asnDB      listFlag
	countryDB  listFlag
	allowlist  listFlag
	qtypes     string
	io         *stdio
}

// newFlags returns a flag set for a command with --config and --db.
func newFlags(name, synopsis string, std *stdio) *settings {
	s := &settings{fs: flag.NewFlagSet(name, flag.ContinueOnError), io: std, cfg: *config.Default()}
	s.fs.SetOutput(std.err)
	s.fs.Usage = func() {
		fmt.Fprintf(std.err, "Usage: fluxwatch %s\n\nFlags:\n", synopsis)
		s.fs.PrintDefaults()
	}
	s.fs.StringVar(&s.configPath, "config", "", "YAML config `file` (flags override it)")
	s.fs.StringVar(&s.cfg.DB, "db", s.cfg.DB, "database `path` (env FLUXWATCH_DB)")
	s.fs.StringVar(&s.cfg.LogLevel, "log-level", s.cfg.LogLevel, "log level: debug, info, warn, error")
	return s
}

// crawlFlags adds the flags that shape measurement.
func (s *settings) crawlFlags() {
	s.fs.Var(&s.resolvers, "resolver", "vantage resolver `ADDR[:PORT]` (repeatable)")
	s.fs.StringVar(&s.cfg.ResolversFile, "resolvers", "", "`file` of vantage resolvers, one ADDR[:PORT] a line")
	s.fs.Float64Var(&s.cfg.QPS, "qps", s.cfg.QPS, "queries per second per vantage (0 lifts the limit: only for your own servers)")
	s.fs.Float64Var(&s.cfg.GlobalQPS, "global-qps", s.cfg.GlobalQPS, "queries per second over all vantages (0: no global limit)")
	s.fs.IntVar(&s.cfg.Workers, "workers", s.cfg.Workers, "probes in flight per vantage")
	s.fs.StringVar(&s.cfg.Engine, "engine", s.cfg.Engine, "query path: sockets (long-lived UDP sockets) or naive (a new socket per query, for comparison)")
	s.fs.DurationVar(&s.cfg.Timeout, "timeout", s.cfg.Timeout, "timeout of one query attempt")
	s.fs.IntVar(&s.cfg.Retries, "retries", s.cfg.Retries, "extra attempts after a timeout")
	s.fs.StringVar(&s.qtypes, "qtypes", strings.Join(s.cfg.QTypes, ","), "query types to ask")
	s.fs.BoolVar(&s.cfg.NSHosts, "ns-hosts", s.cfg.NSHosts, "also resolve the addresses of each domain's name servers")
	s.fs.BoolVar(&s.cfg.Delegation, "delegation", s.cfg.Delegation, "also ask the parent zone's servers for each domain's NS set and glue")
	s.fs.IntVar(&s.cfg.ParentPort, "parent-port", s.cfg.ParentPort, "port to ask parent zone servers on (the simulated world's registry uses another)")
}

// classifyFlags adds the flags that shape classification.
func (s *settings) classifyFlags() {
	s.fs.Var(&s.asnDB, "asn-db", "IP-to-ASN `file`: iptoasn TSV, ip-location-db CSV (.gz allowed) or .mmdb (repeatable)")
	s.fs.Var(&s.countryDB, "country-db", "IP-to-country `file`: ip-location-db CSV or .mmdb (repeatable)")
	s.fs.Var(&s.allowlist, "allowlist", "`file` of names never listed: plain names or rank,domain CSV (repeatable)")
	s.fs.StringVar(&s.cfg.CDNSuffixes, "cdn-suffixes", "", "`file` of CDN zones replacing the built-in list")
	s.fs.BoolVar(&s.cfg.Cymru, "cymru", s.cfg.Cymru, "look up addresses the tables miss in Team Cymru's DNS service (online)")
	s.fs.DurationVar(&s.cfg.Window, "window", s.cfg.Window, "classify over the measurements of this last period")
}

// parse parses args and returns the settings: defaults, then the config
// file, then the flags that were given.
func (s *settings) parse(args []string) (*config.Config, error) {
	if err := s.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg := config.Default()
	if s.configPath != "" {
		var err error
		if cfg, err = config.Load(s.configPath); err != nil {
			return nil, err
		}
	}
	s.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "db":
			cfg.DB = s.cfg.DB
		case "log-level":
			cfg.LogLevel = s.cfg.LogLevel
		case "resolver":
			cfg.Resolvers = s.resolvers
		case "resolvers":
			cfg.ResolversFile = s.cfg.ResolversFile
		case "qps":
			cfg.QPS = s.cfg.QPS
		case "global-qps":
			cfg.GlobalQPS = s.cfg.GlobalQPS
		case "workers":
			cfg.Workers = s.cfg.Workers
		case "engine":
			cfg.Engine = s.cfg.Engine
		case "timeout":
			cfg.Timeout = s.cfg.Timeout
		case "retries":
			cfg.Retries = s.cfg.Retries
		case "qtypes":
			cfg.QTypes = strings.Split(s.qtypes, ",")
		case "ns-hosts":
			cfg.NSHosts = s.cfg.NSHosts
		case "asn-db":
			cfg.ASNDB = s.asnDB
		case "country-db":
			cfg.CountryDB = s.countryDB
		case "allowlist":
			cfg.Allowlist = s.allowlist
		case "cdn-suffixes":
			cfg.CDNSuffixes = s.cfg.CDNSuffixes
		case "delegation":
			cfg.Delegation = s.cfg.Delegation
		case "parent-port":
			cfg.ParentPort = s.cfg.ParentPort
		case "cymru":
			cfg.Cymru = s.cfg.Cymru
		case "window":
			cfg.Window = s.cfg.Window
		}
	})
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
}

func logger(cfg *config.Config, std *stdio) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) // validated
	return slog.New(slog.NewTextHandler(std.err, &slog.HandlerOptions{Level: level}))
}

func openStore(cfg *config.Config) (*storage.Store, error) {
	return storage.Open(cfg.DB)
}

// loadIPMeta loads the configured ASN and country tables (earlier files
// win where they overlap).
func loadIPMeta(cfg *config.Config) (*ipmeta.DB, error) {
	db := &ipmeta.DB{}
	for _, f := range cfg.ASNDB {
		if err := db.Open(f, ipmeta.ASN); err != nil {
			return nil, fmt.Errorf("loading ASN table: %w", err)
		}
	}
	for _, f := range cfg.CountryDB {
		if err := db.Open(f, ipmeta.Country); err != nil {
			return nil, fmt.Errorf("loading country table: %w", err)
		}
	}
	return db, nil
}

// newClassifier loads the IP tables, allowlist and CDN suffixes cfg names.
func newClassifier(cfg *config.Config) (*classify.Classifier, error) {
	meta, err := loadIPMeta(cfg)
	if err != nil {
		return nil, err
	}
	c := &classify.Classifier{Meta: meta, CDNSuffixes: classify.DefaultCDNSuffixes}
	if len(cfg.Allowlist) > 0 {
		if c.Allow, err = classify.LoadAllowlist(cfg.Allowlist...); err != nil {
			return nil, err
		}
	}
	if cfg.CDNSuffixes != "" {
		if c.CDNSuffixes, err = classify.LoadSuffixes(cfg.CDNSuffixes); err != nil {
			return nil, err
		}
	}
	if cfg.Cymru {
		vantages, err := cfg.Vantages()
		if err != nil {
			return nil, err
		}
		c.Fallback = &ipmeta.Cymru{
			Querier:  crawler.NewClient(crawler.ClientOptions{Timeout: cfg.Timeout, Retries: retries(cfg.Retries)}),
			Resolver: vantages[0].Addr,
			Limiter:  rate.NewLimiter(rate.Limit(cfg.CymruQPS), 1),
		}
		meta.AddFallback(c.Fallback)
	}
	return c, nil
}

// newScheduler builds the crawler and scheduler that cfg describes. The
// returned function releases the query engine's sockets.
func newScheduler(cfg *config.Config, store *storage.Store, now func() time.Time, log *slog.Logger) (*scheduler.Scheduler, []scheduler.Vantage, func(), error) {
	vantages, err := cfg.Vantages()
	if err != nil {
		return nil, nil, nil, err
	}
	qtypes, err := config.ParseQTypes(cfg.QTypes)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := crawler.ClientOptions{Timeout: cfg.Timeout, Retries: retries(cfg.Retries), UDPSize: cfg.EDNSSize}
	var q crawler.Querier
	release := func() {}
	switch cfg.Engine {
	case "naive":
		q = crawler.NewClient(opts)
	default:
		e, err := crawler.NewEngine(crawler.EngineOptions{ClientOptions: opts, Sockets: cfg.Sockets})
		if err != nil {
			return nil, nil, nil, err
		}
		q, release = e, func() { e.Close() }
	}
	c := crawler.Crawler{QTypes: qtypes, NSHosts: cfg.NSHosts}
	if cfg.Delegation {
		opts.NoRecursion = true
		c.Delegation, c.Direct, c.ParentPort = true, crawler.NewClient(opts), cfg.ParentPort
	}
	s := scheduler.New(q, c, store, scheduler.Options{
		Vantages:    vantages,
		QPS:         cfg.QPS,
		Burst:       cfg.Burst,
		GlobalQPS:   cfg.GlobalQPS,
		Workers:     cfg.Workers,
		MinInterval: cfg.MinInterval,
		MaxInterval: cfg.MaxInterval,
		Now:         now,
		Logger:      log,
	})
	return s, vantages, release, nil
}

// retries maps the config's count (0 = none) to ClientOptions (0 = default).
func retries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
