package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/config"
)

// exportedDiff compares the exported fields of two configs and describes
// each one that differs; the unexported bookkeeping (file, lines) is skipped.
func exportedDiff(got, want *config.Config) []string {
	var diffs []string
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range gv.NumField() {
		f := gv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if g, w := gv.Field(i).Interface(), wv.Field(i).Interface(); !reflect.DeepEqual(g, w) {
			diffs = append(diffs, fmt.Sprintf("%s: got %#v, want %#v", f.Name, g, w))
		}
	}
	return diffs
}

func TestLoadFull(t *testing.T) {
	got, err := config.Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		DB:                  "/var/lib/fluxwatch/test.db",
		Resolvers:           []string{"192.0.2.53", "[2001:db8::53]:5353"},
		ResolversFile:       "testdata/resolvers.txt",
		VantageQPS:          map[string]float64{"192.0.2.53": 5, "198.51.100.7:5300": 7.5},
		QPS:                 12.5,
		Burst:               4,
		GlobalQPS:           100,
		Workers:             3,
		MaxInFlight:         1000,
		Canary:              "canary.example",
		Engine:              "naive",
		Sockets:             8,
		Procs:               2,
		RandomizeCase:       true,
		MaxRecords:          64,
		Timeout:             1500 * time.Millisecond,
		Retries:             2,
		EDNSSize:            4096,
		QTypes:              []string{"A", "NS"},
		NSHosts:             false,
		MinInterval:         30 * time.Second,
		MaxInterval:         2 * time.Hour,
		DarkMaxInterval:     12 * time.Hour,
		Window:              72 * time.Hour,
		ExpireAfter:         48 * time.Hour,
		Retention:           240 * time.Hour,
		ASNDB:               []string{"/var/lib/fluxwatch/ip2asn-v4.tsv.gz", "/var/lib/fluxwatch/ip2asn-v6.tsv"},
		CountryDB:           []string{"/var/lib/fluxwatch/asn-country-ipv4.csv"},
		IPDBDir:             "/var/lib/fluxwatch/ipdb",
		IPDBSource:          "https://mirror.example/ip-location-db/",
		ListWithoutIPTables: true,
		Allowlist:           []string{"/etc/fluxwatch/tranco.csv"},
		CDNSuffixes:         "/etc/fluxwatch/cdn-suffixes.txt",
		Delegation:          false,
		ParentPort:          5353,
		Cymru:               true,
		CymruQPS:            2,
		RPZZone:             "rpz.example.test",
		LogLevel:            "debug",
		LogFormat:           "json",
		Daemon: config.Daemon{
			Crawl:     "*/2 * * * *",
			Classify:  "@hourly",
			Publish:   "0 */6 * * *",
			Prune:     "@daily",
			Seeds:     "*/5 * * * *",
			SeedFiles: []string{"/etc/fluxwatch/seeds.txt"},
			SeedDir:   "/var/spool/fluxwatch",
			SeedURLs: []config.SeedURL{{URL: "https://feeds.example/phishing.txt", Source: "phish-feed"},
				{URL: "http://127.0.0.1:8080/ranked.csv", Column: "host"}},
			SeedURLMaxBytes: 1 << 20,
			SeedURLTimeout:  30 * time.Second,
			Exports: []config.Export{
				{Format: "rpz", Out: "/srv/rpz/fluxwatch.rpz"},
				{Format: "csv", Out: "verdicts.csv", All: true},
			},
			Serve: config.Serve{
				DNSListen:  "127.0.0.1:5300",
				HTTPListen: "[::1]:8053",
				TSIGKeys: []config.TSIGKey{
					{Name: "fluxwatch-feed", SecretFile: "testdata/tsig.key"},
					{Name: "bind-secondary", Algorithm: "hmac-sha512", Secret: "Yi1zZWNvbmRhcnktdGVzdC1rZXktbm90LXJlYWwh"},
				},
				Notify:       []string{"192.0.2.53", "198.51.100.7:5353"},
				NotifyKey:    "bind-secondary",
				IXFRVersions: 64,
				APITokenFile: "testdata/api.token",
			},
			NATS: config.NATS{URL: "nats://127.0.0.1:4222", TokenFile: "testdata/api.token", Prefix: "fw",
				Targets: []string{"region:eu", "agent:tyo-1"}, Lease: 5 * time.Minute, Duplicates: 2 * time.Minute},
		},
	}
	for _, d := range exportedDiff(got, want) {
		t.Error(d)
	}

	// full.yaml must keep setting every key away from its default, or a
	// key that silently stops being decoded would go unnoticed here.
	def := config.Default()
	dv, gv := reflect.ValueOf(def).Elem(), reflect.ValueOf(got).Elem()
	for i := range dv.NumField() {
		if f := dv.Type().Field(i); f.IsExported() && reflect.DeepEqual(dv.Field(i).Interface(), gv.Field(i).Interface()) {
			t.Errorf("testdata/full.yaml leaves %s at its default %v; set it to something else", f.Name, dv.Field(i).Interface())
		}
	}
	dd, gd := reflect.ValueOf(def.Daemon), reflect.ValueOf(got.Daemon)
	for i := range dd.NumField() {
		if reflect.DeepEqual(dd.Field(i).Interface(), gd.Field(i).Interface()) {
			t.Errorf("testdata/full.yaml leaves daemon %s at its default", dd.Type().Field(i).Name)
		}
	}
}

func TestLoadEmptyGivesDefaults(t *testing.T) {
	t.Setenv("FLUXWATCH_DB", "")
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty.yaml":    "",
		"comments.yaml": "# nothing set yet\n\n",
		"document.yaml": "---\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range exportedDiff(got, config.Default()) {
				t.Error(d)
			}
		})
	}
	// The checked-in fixture too, so an empty file in testdata stays loadable.
	got, err := config.Load("testdata/empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := exportedDiff(got, config.Default()); len(d) > 0 {
		t.Errorf("testdata/empty.yaml: %v", d)
	}
}

func TestDefaultValidates(t *testing.T) {
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestDefaultDBFromEnv(t *testing.T) {
	t.Setenv("FLUXWATCH_DB", "")
	if got := config.Default().DB; got != "fluxwatch.db" {
		t.Errorf("without FLUXWATCH_DB: DB = %q, want fluxwatch.db", got)
	}

	t.Setenv("FLUXWATCH_DB", "/srv/fluxwatch/env.db")
	if got := config.Default().DB; got != "/srv/fluxwatch/env.db" {
		t.Errorf("with FLUXWATCH_DB: DB = %q", got)
	}
	// The variable sets the default, so a file without db: keeps it …
	c, err := config.Load("testdata/empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DB != "/srv/fluxwatch/env.db" {
		t.Errorf("empty file with FLUXWATCH_DB: DB = %q", c.DB)
	}
	// … and a file that sets db: wins over it.
	c, err = config.Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DB != "/var/lib/fluxwatch/test.db" {
		t.Errorf("full.yaml with FLUXWATCH_DB: DB = %q", c.DB)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want an error wrapping fs.ErrNotExist", err)
	}
}

// TestLoadErrors checks the exact text of the errors bad files give. FILE
// stands for the file's path; several lines are several joined errors.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "qps: 5\nbogus: 1\n",
			[]string{`FILE:2: bogus: unknown key`}},
		{"unknown key in daemon", "daemon:\n  crawl: \"@every 1m\"\n  crawll: \"@every 2m\"\n",
			[]string{`FILE:3: daemon.crawll: unknown key`}},
		{"unknown key in an export", "daemon:\n  exports:\n    - format: rpz\n      out: a.rpz\n    - format: csv\n      out: a.csv\n      zone: x\n",
			[]string{`FILE:7: daemon.exports[2].zone: unknown key`}},
		{"negative qps", "qps: -1\n",
			[]string{`FILE:1: qps: -1 is negative (0 lifts the limit)`}},
		{"negative global_qps", "global_qps: -0.5\n",
			[]string{`FILE:1: global_qps: -0.5 is negative (0 means no global limit)`}},
		{"negative vantage qps", "vantage_qps:\n  192.0.2.1: -2\n",
			[]string{`FILE:1: vantage_qps: 192.0.2.1: qps -2 is negative`}},
		{"workers negative", "workers: -1\n",
			[]string{`FILE:1: workers: -1 is outside 0..65536 (0: as many as the rate needs)`}},
		{"ipdb_source not a URL", "ipdb_source: mirror/ipdb\n",
			[]string{`FILE:1: ipdb_source: "mirror/ipdb" is not an http or https URL`}},
		{"max_in_flight negative", "max_in_flight: -5\n",
			[]string{`FILE:1: max_in_flight: -5 is outside 0..1048576 (0: the default)`}},
		{"canary not a name", "canary: \"a..b\"\n",
			[]string{`FILE:1: canary: "a..b" is not a domain name`}},
		{"dark_max_interval below max_interval", "max_interval: 2h\ndark_max_interval: 1h\n",
			[]string{`FILE:2: dark_max_interval: 1h0m0s is below max_interval 2h0m0s`}},
		{"timeout as a number", "timeout: 5\n",
			[]string{"FILE:1: timeout: want a duration such as 30m or 24h, got 5"}},
		{"timeout not a duration", "retries: 2\ntimeout: soon\n",
			[]string{`FILE:2: timeout: want a duration such as 30m or 24h, got "soon"`}},
		{"window as a list", "window:\n  - 1h\n",
			[]string{"FILE:2: window: want a duration such as 30m or 24h, got a list"}},
		{"qps as a word", "db: x.db\nlog_level: warn\nqps: fast\n",
			[]string{`FILE:3: qps: want a number, got "fast"`}},
		{"a long value, cut", "timeout: \"two seconds\"\n",
			[]string{`FILE:1: timeout: want a duration such as 30m or 24h, got "two sec..."`}},
		{"ns_hosts as a word", "ns_hosts: maybe\n",
			[]string{`FILE:1: ns_hosts: want true or false, got "maybe"`}},
		{"qtypes as a string", "qtypes: A\n",
			[]string{`FILE:1: qtypes: want a list, got "A"`}},
		{"resolvers as a mapping", "resolvers:\n  a: 192.0.2.1\n",
			[]string{`FILE:2: resolvers: want a list, got a mapping`}},
		{"daemon as a number", "daemon: 5\n",
			[]string{`FILE:1: daemon: want a mapping of keys to values, got 5`}},
		{"negative nats lease", "daemon:\n  nats:\n    lease: -1m\n",
			[]string{`FILE:3: daemon.nats.lease: -1m0s is negative (0: the default)`}},
		{"retention below window", "window: 48h\nretention: 24h\n",
			[]string{`FILE:2: retention: 24h0m0s is shorter than window 48h0m0s: the classifier would lose evidence`}},
		{"expire_after zero", "expire_after: 0s\n",
			[]string{`FILE:1: expire_after: must be positive`}},
		{"log_format unknown", "log_format: xml\n",
			[]string{`FILE:1: log_format: "xml" is not text or json`}},
		{"timeout out of range", "timeout: 2m\n",
			[]string{`FILE:1: timeout: 2m0s is outside 10ms..1m`}},
		{"bad cron schedule", "daemon:\n  crawl: every minute\n",
			[]string{`FILE:2: daemon.crawl: bad schedule "every minute": expected exactly 5 fields, found 2: [every minute]`}},
		{"export without out", "daemon:\n  exports:\n    - format: rpz\n",
			[]string{`FILE:2: daemon.exports: export 1: out is empty`}},
		{"seed URL negative limits", "daemon:\n  seed_url_max_bytes: -1\n  seed_url_timeout: -1s\n",
			[]string{`FILE:2: daemon.seed_url_max_bytes: -1 is negative (0: the default, 67108864)`,
				`FILE:3: daemon.seed_url_timeout: -1s is negative (0: the default, 1m0s)`}},
		{"unknown qtype", "qtypes: [A, BOGUS]\n",
			[]string{`FILE:1: qtypes: unknown or unsupported query type "BOGUS"`}},
		{"zone transfer qtype", "qtypes: [A, AXFR]\n",
			[]string{`FILE:1: qtypes: unknown or unsupported query type "AXFR"`}},
		{"no qtypes", "qtypes: []\n",
			[]string{`FILE:1: qtypes: no query types`}},
		{"resolver is a name", "resolvers:\n  - 192.0.2.1\n  - dns.example.test\n",
			[]string{`FILE:1: resolvers: resolver "dns.example.test": not an IP address`}},
		{"resolver bad port", "resolvers: [\"192.0.2.1:99999\"]\n",
			[]string{`FILE:1: resolvers: resolver "192.0.2.1:99999": bad port "99999"`}},
		{"vantage_qps bad resolver", "vantage_qps:\n  ns1.example.test: 3\n",
			[]string{`FILE:1: vantage_qps: resolver "ns1.example.test": not an IP address`}},
		{"max_interval below min_interval", "min_interval: 1h\nmax_interval: 10m\n",
			[]string{`FILE:2: max_interval: 10m0s is below min_interval 1h0m0s`}},
		{"bad log_level", "log_level: loud\n",
			[]string{`FILE:1: log_level: "loud" is not one of debug, info, warn, error`}},
		{"bad rpz_zone", "rpz_zone: a..b\n",
			[]string{`FILE:1: rpz_zone: zone "a..b": bad label`}},
		{"small edns_size", "edns_size: 100\n",
			[]string{`FILE:1: edns_size: 100 is below 512`}},
		{"invalid YAML: unterminated quote", "qps: 1\nlog_level: \"info\n",
			[]string{`FILE:2: found unexpected end of stream`}},
		{"invalid YAML: bad indentation", "qps: 1\n  workers: 2\n",
			[]string{`FILE:2: mapping values are not allowed in this context`}},
		{"duplicate key", "qps: 1\nqps: 2\n",
			[]string{`FILE:2: qps: mapping key "qps" already defined at line 1`}},
		{"several decoding errors", "workers: many\nbogus: 1\ndaemon:\n  crawl: \"@every 1m\"\n  other: x\n",
			[]string{
				`FILE:1: workers: want a whole number, got "many"`,
				`FILE:2: bogus: unknown key`,
				`FILE:5: daemon.other: unknown key`,
			}},
		{"several invalid values", "qps: -1\nworkers: -2\nlog_level: loud\nmin_interval: 1h\nmax_interval: 1m\n",
			[]string{
				`FILE:1: qps: -1 is negative (0 lifts the limit)`,
				`FILE:2: workers: -2 is outside 0..65536 (0: as many as the rate needs)`,
				`FILE:5: max_interval: 1m0s is below min_interval 1h0m0s`,
				`FILE:3: log_level: "loud" is not one of debug, info, warn, error`,
			}},
		{"every schedule bad, in a stable order", "daemon:\n  publish: p\n  classify: c\n  crawl: x\n",
			[]string{
				`FILE:4: daemon.crawl: bad schedule "x": expected exactly 5 fields, found 1: [x]`,
				`FILE:3: daemon.classify: bad schedule "c": expected exactly 5 fields, found 1: [c]`,
				`FILE:2: daemon.publish: bad schedule "p": expected exactly 5 fields, found 1: [p]`,
			}},
		{"vantage_qps errors in a stable order", "vantage_qps:\n  192.0.2.9: -1\n  192.0.2.1: -3\n  192.0.2.5: -2\n",
			[]string{
				`FILE:1: vantage_qps: 192.0.2.1: qps -3 is negative`,
				`FILE:1: vantage_qps: 192.0.2.5: qps -2 is negative`,
				`FILE:1: vantage_qps: 192.0.2.9: qps -1 is negative`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fluxwatch.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			// Maps in Validate must not make the order vary: load a few times.
			for range 5 {
				_, err := config.Load(path)
				if err == nil {
					t.Fatalf("Load succeeded, want:\n%s", strings.Join(tt.want, "\n"))
				}
				want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "FILE", path)
				if err.Error() != want {
					t.Fatalf("error:\n%s\nwant:\n%s", err, want)
				}
				if len(tt.want) > 1 {
					joined, ok := err.(interface{ Unwrap() []error })
					if !ok || len(joined.Unwrap()) != len(tt.want) {
						t.Fatalf("want %d errors joined with errors.Join, got %T", len(tt.want), err)
					}
				}
			}
		})
	}
}

// Validate on a config built in code (no file) names just the key.
func TestValidateWithoutFile(t *testing.T) {
	c := config.Default()
	c.Workers = 70000
	c.Daemon.Classify = "@sometimes"
	err := c.Validate()
	want := "workers: 70000 is outside 0..65536 (0: as many as the rate needs)\n" +
		`daemon.classify: bad schedule "@sometimes": unrecognized descriptor: @sometimes`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v\nwant:\n%s", err, want)
	}
}

// No duration key takes a negative value: each is set to -1s in turn.
func TestNegativeDurationsAreRefused(t *testing.T) {
	var keys []string
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			key := prefix + strings.Split(f.Tag.Get("yaml"), ",")[0]
			switch {
			case !f.IsExported():
			case f.Type == reflect.TypeFor[time.Duration]():
				keys = append(keys, key)
			case f.Type.Kind() == reflect.Struct:
				walk(v.Field(i), key+".")
			}
		}
	}
	walk(reflect.ValueOf(config.Config{}), "")
	if len(keys) < 10 {
		t.Fatalf("found only the duration keys %v", keys)
	}
	dir := t.TempDir()
	for _, key := range keys {
		var yaml, indent string
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			yaml += indent + p + ":\n"
			indent += "  "
		}
		yaml += indent + parts[len(parts)-1] + ": -1s\n"
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:%d: %s: ", path, len(parts), key)) {
			t.Errorf("%s: -1s: %v", key, err)
		}
	}
}
