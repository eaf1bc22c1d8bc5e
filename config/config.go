// Package config holds fluxwatch's settings: defaults, then a YAML file,
// then command-line flags, each overriding the one before. Unknown keys
// are rejected and every value is checked, with errors that name the file,
// line and key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/fluxwatch/fluxwatch/obs"
)

// Config is everything fluxwatch can be told. The YAML keys are the
// contract documented in the README; keep them stable.
type Config struct {
	DB              string             `yaml:"db"`
	Resolvers       []string           `yaml:"resolvers"`
	ResolversFile   string             `yaml:"resolvers_file"`
	VantageQPS      map[string]float64 `yaml:"vantage_qps"`
	QPS             float64            `yaml:"qps"`
	Burst           int                `yaml:"burst"`
	GlobalQPS       float64            `yaml:"global_qps"`
	Workers         int                `yaml:"workers"`
	MaxInFlight     int                `yaml:"max_in_flight"`
	Canary          string             `yaml:"canary"`
	Engine          string             `yaml:"engine"`
	Sockets         int                `yaml:"sockets"`
	Procs           int                `yaml:"procs"`
	RandomizeCase   bool               `yaml:"randomize_case"`
	MaxRecords      int                `yaml:"max_records"`
	Timeout         time.Duration      `yaml:"timeout"`
	Retries         int                `yaml:"retries"`
	EDNSSize        uint16             `yaml:"edns_size"`
	QTypes          []string           `yaml:"qtypes"`
	NSHosts         bool               `yaml:"ns_hosts"`
	MinInterval     time.Duration      `yaml:"min_interval"`
	MaxInterval     time.Duration      `yaml:"max_interval"`
	DarkMaxInterval time.Duration      `yaml:"dark_max_interval"`
	Window          time.Duration      `yaml:"window"`
	ExpireAfter     time.Duration      `yaml:"expire_after"`
	Retention       time.Duration      `yaml:"retention"`
	ASNDB           []string           `yaml:"asn_db"`
	CountryDB       []string           `yaml:"country_db"`
	// IPDBDir holds the tables `fluxwatch ipdb update` keeps, used when
	// neither asn_db nor country_db is set; "" is "ipdb" beside the
	// database. IPDBSource is where the update fetches them from ("":
	// ipmeta.DefaultSource).
	IPDBDir    string `yaml:"ipdb_dir"`
	IPDBSource string `yaml:"ipdb_source"`
	// ListWithoutIPTables lets flux verdicts judged without an IP-to-ASN
	// table be listed (by default they are not: networks are then only
	// prefixes, and CDNs look like flux).
	ListWithoutIPTables bool     `yaml:"list_without_ip_tables"`
	Allowlist           []string `yaml:"allowlist"`
	CDNSuffixes         string   `yaml:"cdn_suffixes"`
	Delegation          bool     `yaml:"delegation"`
	ParentPort          int      `yaml:"parent_port"`
	Cymru               bool     `yaml:"cymru"`
	CymruQPS            float64  `yaml:"cymru_qps"`
	RPZZone             string   `yaml:"rpz_zone"`
	LogLevel            string   `yaml:"log_level"`
	LogFormat           string   `yaml:"log_format"`
	Daemon              Daemon   `yaml:"daemon"`

	// lines maps dotted keys to the line they were set on, for errors.
	lines map[string]int
	file  string
}

// Daemon is the `daemon:` section: cron schedules and what to publish.
type Daemon struct {
	Crawl    string `yaml:"crawl"`
	Classify string `yaml:"classify"`
	Publish  string `yaml:"publish"`
	Prune    string `yaml:"prune"`
	// Seeds is the schedule of the seeds job, which imports new files
	// dropped in SeedDir and fetches SeedURLs.
	Seeds string `yaml:"seeds"`
	// SeedFiles are imported when the daemon starts and on SIGHUP.
	SeedFiles []string `yaml:"seed_files"`
	// SeedDir is watched for new seed files; each is imported, then moved
	// into its imported/ subdirectory.
	SeedDir string   `yaml:"seed_dir"`
	Exports []Export `yaml:"exports"`
	Serve   Serve    `yaml:"serve"`
	NATS    NATS     `yaml:"nats"`

	// SeedURLs are seed lists fetched by URL on the Seeds schedule, with
	// conditional requests; SeedURLMaxBytes bounds the size of each (0:
	// DefaultSeedURLMaxBytes) and SeedURLTimeout each fetch (0:
	// DefaultSeedURLTimeout).
	SeedURLs        []SeedURL     `yaml:"seed_urls"`
	SeedURLMaxBytes int64         `yaml:"seed_url_max_bytes"`
	SeedURLTimeout  time.Duration `yaml:"seed_url_timeout"`
}

// SeedURL is a seed list the daemon fetches by URL.
type SeedURL struct {
	URL    string `yaml:"url"`
	Source string `yaml:"source"` // the source tag of its names; "": the URL
	Column string `yaml:"column"` // the CSV column of the names; "": recognised
}

// Export is one file the daemon publishes.
type Export struct {
	Format string `yaml:"format"`
	Out    string `yaml:"out"`
	All    bool   `yaml:"all"`
}

// Rebase makes every relative file or directory path in c relative to
// dir instead of to the working directory: for a command the holder of a
// database runs for a client in dir.
func (c *Config) Rebase(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for _, p := range []*string{&c.DB, &c.ResolversFile, &c.IPDBDir, &c.CDNSuffixes, &c.Daemon.SeedDir,
		&c.Daemon.Serve.APITokenFile, &c.Daemon.NATS.PasswordFile, &c.Daemon.NATS.TokenFile,
		&c.Daemon.NATS.NKeySeedFile, &c.Daemon.NATS.CredsFile,
		&c.Daemon.NATS.TLSCA, &c.Daemon.NATS.TLSCert, &c.Daemon.NATS.TLSKey} {
		abs(p)
	}
	for _, l := range [][]string{c.ASNDB, c.CountryDB, c.Allowlist, c.Daemon.SeedFiles} {
		for i := range l {
			abs(&l[i])
		}
	}
	for i := range c.Daemon.Exports {
		abs(&c.Daemon.Exports[i].Out)
	}
	for i := range c.Daemon.Serve.TSIGKeys {
		abs(&c.Daemon.Serve.TSIGKeys[i].SecretFile)
	}
}

// IPDBPath is the directory of the IP tables `ipdb update` keeps.
func (c *Config) IPDBPath() string {
	if c.IPDBDir != "" {
		return c.IPDBDir
	}
	return filepath.Join(filepath.Dir(c.DB), "ipdb")
}

// Defaults that belong to the components which use them. config imports
// no component, so it restates them here; a test in each component's
// package checks that the two agree.
const (
	// DefaultIXFRVersions is feed.DefaultVersions.
	DefaultIXFRVersions = 16
	// DefaultSeedURLMaxBytes is seeds.DefaultMaxBytes.
	DefaultSeedURLMaxBytes = 64 << 20
	// DefaultSeedURLTimeout is seeds.DefaultTimeout.
	DefaultSeedURLTimeout = time.Minute
)

// Default returns the built-in settings.
func Default() *Config {
	db := os.Getenv("FLUXWATCH_DB")
	if db == "" {
		db = "fluxwatch.db"
	}
	return &Config{
		DB:          db,
		QPS:         20,
		Engine:      "sockets",
		Sockets:     4,
		MaxRecords:  512,
		Timeout:     2 * time.Second,
		Retries:     1,
		EDNSSize:    1232,
		QTypes:      []string{"A", "AAAA", "NS"},
		NSHosts:     true,
		Delegation:  true,
		ParentPort:  53,
		CymruQPS:    5,
		MinInterval: time.Minute,
		MaxInterval: time.Hour,
		Window:      24 * time.Hour,
		ExpireAfter: 7 * 24 * time.Hour,
		Retention:   30 * 24 * time.Hour,
		RPZZone:     "fluxwatch.rpz",
		LogLevel:    "info",
		LogFormat:   "text",
		Daemon: Daemon{
			Crawl:    "@every 1m",
			Classify: "@every 5m",
			Publish:  "@every 5m",
			Prune:    "@every 1h",
			Seeds:    "@every 1m",
			Serve:    Serve{IXFRVersions: DefaultIXFRVersions},

			SeedURLMaxBytes: DefaultSeedURLMaxBytes,
			SeedURLTimeout:  DefaultSeedURLTimeout,
		},
	}
}

// Load reads path over the defaults and validates the result.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c := Default()
	if err := c.parse(path, data); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

func (c *Config) parse(path string, data []byte) error {
	c.file = path
	c.lines = map[string]int{}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return c.yamlError(err)
	}
	if len(root.Content) > 0 {
		collectLines(root.Content[0], "", c.lines, map[*yaml.Node]bool{})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return c.yamlError(err)
	}
	return nil
}

// yamlError turns the YAML package's "line 3: field x not found in type
// config.Daemon" and "line 5: cannot unmarshal !!str `soon` into
// time.Duration" into "file:3: daemon.x: unknown key" and "file:5: timeout:
// want a duration such as 30m or 24h, got "soon"", one error per problem.
func (c *Config) yamlError(err error) error {
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var errs []error
	for _, m := range msgs {
		var line int
		if _, serr := fmt.Sscanf(m, "line %d:", &line); serr != nil {
			errs = append(errs, fmt.Errorf("%s: %s", c.file, m))
			continue
		}
		m = strings.TrimSpace(m[strings.IndexByte(m, ':')+1:])
		name := ""
		if i, j := strings.Index(m, "field "), strings.Index(m, " not found in type"); i == 0 && j > i {
			name, m = m[len("field "):j], "unknown key"
		}
		key := c.keyAt(line, name)
		if i := strings.LastIndexByte(key, '.'); i > 0 && strings.HasPrefix(m, "cannot unmarshal !!map") && c.lines[key[:i]] < line {
			// A mapping's line is its first key's: the key it is the
			// value of stands above.
			key = key[:i]
		}
		if m = wantType(m); key != "" {
			m = key + ": " + m
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s", c.file, line, m))
	}
	return errors.Join(errs...)
}

// unmarshalError is how the YAML package says a value is not of its key's
// type: "cannot unmarshal !!str `fast` into float64". Values longer than
// ten characters it cuts to seven and "...".
var unmarshalError = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")

// wantType says a YAML type error for people: "want a number, got "fast"".
// Other messages it returns as they are.
func wantType(msg string) string {
	m := unmarshalError.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	tag, value, goType := m[1], m[2], m[3]
	var want string
	switch {
	case goType == "time.Duration":
		want = "a duration such as 30m or 24h"
	case goType == "float64" || goType == "float32":
		want = "a number"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		want = "a whole number"
	case goType == "bool":
		want = "true or false"
	case goType == "string":
		want = "a string"
	case strings.HasPrefix(goType, "[]"):
		want = "a list"
	case strings.HasPrefix(goType, "map[") || strings.HasPrefix(goType, "config."):
		want = "a mapping of keys to values"
	default:
		return msg
	}
	got := strconv.Quote(value)
	switch tag {
	case "seq":
		got = "a list"
	case "map":
		got = "a mapping"
	case "int", "float", "bool", "null":
		got = value
	}
	return "want " + want + ", got " + got
}

// keyAt returns the dotted key set on line (named name, if given), or
// without a name the key on the nearest line above, where a multi-line
// value starts.
func (c *Config) keyAt(line int, name string) string {
	best := ""
	for _, k := range slices.Sorted(maps.Keys(c.lines)) {
		l := c.lines[k]
		if l > line || name != "" && (l != line || k != name && !strings.HasSuffix(k, "."+name)) {
			continue
		}
		if best == "" || l > c.lines[best] {
			best = k
		}
	}
	return best
}

// collectLines records the line of every key under prefix. Keys brought in
// by an alias (`daemon: *d`) or a merge (`<<: *base`) count at the line the
// anchor wrote them; a key set in the mapping itself wins over a merged one.
// Each anchor is followed once (expanded holds those followed): a value that
// contains itself, or aliases of aliases doubling at every level, would
// otherwise never end; decoding reports the first and limits the second.
func collectLines(n *yaml.Node, prefix string, lines map[string]int, expanded map[*yaml.Node]bool) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || expanded[n.Alias] {
			return
		}
		expanded[n.Alias] = true
		n = n.Alias
	}
	if n.Kind == yaml.SequenceNode { // keys inside list items: daemon.exports[1].out
		for i, item := range n.Content {
			collectLines(item, fmt.Sprintf("%s[%d]", prefix, i+1), lines, expanded)
		}
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	merged := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Tag == "!!merge" { // <<: *a or <<: [*a, *b]
			items := []*yaml.Node{n.Content[i+1]}
			if v := n.Content[i+1]; v.Kind == yaml.SequenceNode {
				items = v.Content
			}
			for _, item := range items {
				collectLines(item, prefix, merged, expanded)
			}
			continue
		}
		k := n.Content[i].Value
		if prefix != "" {
			k = prefix + "." + k
		}
		lines[k] = n.Content[i].Line
		collectLines(n.Content[i+1], k, lines, expanded)
	}
	for k, l := range merged {
		if _, ok := lines[k]; !ok {
			lines[k] = l
		}
	}
}

// Where names the place a key was set: "file:line: key" or just "key".
// Components that check their part of the configuration when they are
// built from it start their errors with it.
func (c *Config) Where(key string) string {
	if line, ok := c.lines[key]; ok && c.file != "" {
		return fmt.Sprintf("%s:%d: %s", c.file, line, key)
	}
	return key
}

// Validate checks every value and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", c.Where(key), fmt.Sprintf(format, args...)))
	}
	if c.DB == "" {
		bad("db", "must not be empty")
	}
	for _, r := range c.Resolvers {
		if _, err := obs.ParseVantage(r); err != nil {
			bad("resolvers", "%v", err)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(c.VantageQPS)) { // sorted: errors in a stable order
		q := c.VantageQPS[r]
		if _, err := obs.ParseVantage(r); err != nil {
			bad("vantage_qps", "%v", err)
		}
		if q < 0 {
			bad("vantage_qps", "%s: qps %g is negative", r, q)
		}
	}
	if c.QPS < 0 {
		bad("qps", "%g is negative (0 lifts the limit)", c.QPS)
	}
	if c.GlobalQPS < 0 {
		bad("global_qps", "%g is negative (0 means no global limit)", c.GlobalQPS)
	}
	if c.Burst < 0 {
		bad("burst", "%d is negative", c.Burst)
	}
	if c.Workers < 0 || c.Workers > 65536 {
		bad("workers", "%d is outside 0..65536 (0: as many as the rate needs)", c.Workers)
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > 1<<20 {
		bad("max_in_flight", "%d is outside 0..1048576 (0: the default)", c.MaxInFlight)
	}
	if c.Canary != "" {
		if _, ok := dns.IsDomainName(c.Canary); !ok {
			bad("canary", "%q is not a domain name", c.Canary)
		}
	}
	if c.Engine != "sockets" && c.Engine != "naive" {
		bad("engine", "%q is not one of sockets, naive", c.Engine)
	}
	if c.MaxRecords < 1 || c.MaxRecords > 65535 {
		bad("max_records", "%d is outside 1..65535", c.MaxRecords)
	}
	if c.Sockets < 1 || c.Sockets > 1024 {
		bad("sockets", "%d is outside 1..1024", c.Sockets)
	}
	if c.Procs < 0 || c.Procs > 1024 {
		bad("procs", "%d is outside 0..1024", c.Procs)
	}
	if c.Timeout < 10*time.Millisecond || c.Timeout > time.Minute {
		bad("timeout", "%s is outside 10ms..1m", c.Timeout)
	}
	if c.Retries < 0 || c.Retries > 10 {
		bad("retries", "%d is outside 0..10", c.Retries)
	}
	if c.EDNSSize != 0 && c.EDNSSize < 512 {
		bad("edns_size", "%d is below 512", c.EDNSSize)
	}
	if _, err := ParseQTypes(c.QTypes); err != nil {
		bad("qtypes", "%v", err)
	}
	if c.ParentPort < 1 || c.ParentPort > 65535 {
		bad("parent_port", "%d is not a port number", c.ParentPort)
	}
	if c.IPDBSource != "" {
		if u, err := url.Parse(c.IPDBSource); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("ipdb_source", "%q is not an http or https URL", c.IPDBSource)
		}
	}
	if c.CymruQPS <= 0 {
		bad("cymru_qps", "must be positive")
	}
	if c.MinInterval <= 0 {
		bad("min_interval", "must be positive")
	}
	if c.MaxInterval < c.MinInterval {
		// Name the key the file set: raising min_interval alone past the
		// default max_interval must point at the file too.
		_, maxSet := c.lines["max_interval"]
		if _, minSet := c.lines["min_interval"]; minSet && !maxSet {
			bad("min_interval", "%s is above max_interval %s", c.MinInterval, c.MaxInterval)
		} else {
			bad("max_interval", "%s is below min_interval %s", c.MaxInterval, c.MinInterval)
		}
	}
	if c.DarkMaxInterval < 0 {
		bad("dark_max_interval", "%s is negative (0: the default, 24h)", c.DarkMaxInterval)
	} else if c.DarkMaxInterval > 0 && c.DarkMaxInterval < c.MaxInterval {
		bad("dark_max_interval", "%s is below max_interval %s", c.DarkMaxInterval, c.MaxInterval)
	}
	if c.Window <= 0 {
		bad("window", "must be positive")
	}
	if c.ExpireAfter <= 0 {
		bad("expire_after", "must be positive")
	}
	if c.Retention < 0 {
		bad("retention", "must not be negative (0 keeps every observation)")
	} else if c.Retention > 0 && c.Retention < c.Window {
		bad("retention", "%s is shorter than window %s: the classifier would lose evidence", c.Retention, c.Window)
	}
	if err := checkZone(c.RPZZone); err != nil {
		bad("rpz_zone", "%v", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q is not text or json", c.LogFormat)
	}
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	for _, s := range []struct{ key, spec string }{
		{"daemon.crawl", c.Daemon.Crawl}, {"daemon.classify", c.Daemon.Classify}, {"daemon.publish", c.Daemon.Publish},
		{"daemon.prune", c.Daemon.Prune},
		{"daemon.seeds", c.Daemon.Seeds},
	} {
		if _, err := parser.Parse(s.spec); err != nil {
			bad(s.key, "bad schedule %q: %v", s.spec, err)
		}
	}
	// Export formats are checked by the daemon, which writes them.
	for i, e := range c.Daemon.Exports {
		key := "daemon.exports"
		if e.Out == "" {
			bad(key, "export %d: out is empty", i+1)
		}
	}
	n := c.Daemon.NATS
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"daemon.nats.lease", n.Lease}, {"daemon.nats.ingest_ack_wait", n.IngestAckWait},
		{"daemon.nats.work_max_age", n.WorkMaxAge}, {"daemon.nats.obs_max_age", n.ObsMaxAge},
		{"daemon.nats.duplicates", n.Duplicates},
	} {
		if d.v < 0 {
			bad(d.key, "%s is negative (0: the default)", d.v)
		}
	}
	switch {
	case n.Shards < 0:
		bad("daemon.nats.shards", "%d is negative (0 or 1: one coordinator)", n.Shards)
	case n.Shard < 0 || n.Shard >= max(n.Shards, 1):
		bad("daemon.nats.shard", "shard %d of %d: shards are numbered 0 to daemon.nats.shards-1", n.Shard, max(n.Shards, 1))
	}
	// Seed URLs are checked by the daemon's seeds job, which fetches them.
	if c.Daemon.SeedURLMaxBytes < 0 {
		bad("daemon.seed_url_max_bytes", "%d is negative (0: the default, %d)", c.Daemon.SeedURLMaxBytes, DefaultSeedURLMaxBytes)
	}
	if c.Daemon.SeedURLTimeout < 0 {
		bad("daemon.seed_url_timeout", "%s is negative (0: the default, %s)", c.Daemon.SeedURLTimeout, DefaultSeedURLTimeout)
	}
	errs = append(errs, c.validateServe()...)
	// daemon.nats is checked by the cluster package, which connects.
	return errors.Join(errs...)
}

func checkZone(z string) error {
	z = strings.TrimSuffix(z, ".")
	if z == "" {
		return errors.New("empty zone name")
	}
	for _, l := range strings.Split(z, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("zone %q: bad label", z)
		}
	}
	return nil
}
