package config

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Serve is the `daemon.serve:` section: the RPZ zone served to resolvers
// by zone transfer, and the exports served over HTTP. Nothing listens
// unless its address is set.
type Serve struct {
	// DNSListen is the IP:PORT the RPZ zone is served on (AXFR, IXFR,
	// SOA) over UDP and TCP; empty serves nothing.
	DNSListen string `yaml:"dns_listen"`
	// HTTPListen is the IP:PORT the export files are served on; empty
	// serves nothing.
	HTTPListen string `yaml:"http_listen"`
	// TSIGKeys are the keys a zone transfer must be signed with.
	TSIGKeys []TSIGKey `yaml:"tsig_keys"`
	// Notify lists the secondaries (IP or IP:PORT) sent NOTIFY on every publish.
	Notify []string `yaml:"notify"`
	// NotifyKey names the TSIG key NOTIFY is signed with; empty sends it
	// unsigned (Unbound, which has no TSIG, takes only those).
	NotifyKey string `yaml:"notify_key"`
	// IXFRVersions is how many versions are kept for incremental
	// transfers; 0 answers every IXFR with the whole zone.
	IXFRVersions int `yaml:"ixfr_versions"`
	// APITokenFile holds the bearer token that allows the HTTP API's
	// writes (delisting); without it the API is read-only.
	APITokenFile string `yaml:"api_token_file"`
}

// TSIGKey is a TSIG key as configured: its secret inline or in a file
// (the base64 secret alone, or tsig-keygen's BIND key clause). String,
// GoString and LogValue leave the secret out.
type TSIGKey struct {
	Name       string `yaml:"name"`
	Algorithm  string `yaml:"algorithm"`
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
}

// String names the key without its secret.
func (k TSIGKey) String() string { return "TSIG key " + k.Name }

// GoString keeps the secret out of %#v.
func (k TSIGKey) GoString() string {
	return fmt.Sprintf("config.TSIGKey{Name:%q, Algorithm:%q, Secret:<redacted>, SecretFile:%q}", k.Name, k.Algorithm, k.SecretFile)
}

// LogValue keeps the secret out of structured logs.
func (k TSIGKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", k.Name), slog.String("algorithm", k.Algorithm))
}

// NotifyAddrs returns the notify addresses as IP:PORT (port 53 when none is given).
func (s Serve) NotifyAddrs() []string {
	var out []string
	for _, a := range s.Notify {
		if hp, err := hostPort(a, "53"); err == nil {
			out = append(out, hp)
		}
	}
	return out
}

// hostPort checks an IP or IP:PORT ([IPv6]:PORT) and returns IP:PORT.
func hostPort(s, defPort string) (string, error) {
	host, port := s, defPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("%q: want an IP address, with :PORT or without", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("%q: bad port", s)
	}
	return net.JoinHostPort(host, port), nil
}

// listenAddr checks an IP:PORT to listen on; the IP must be given, so
// that listening beyond loopback is always a choice written down.
func listenAddr(s, example string) error {
	host, _, err := net.SplitHostPort(s)
	if err != nil || net.ParseIP(host) == nil {
		return fmt.Errorf("%q: want IP:PORT, e.g. %s (0.0.0.0 or [::] for every interface)", s, example)
	}
	_, err = hostPort(s, "")
	return err
}

// validateServe checks the daemon.serve section. Errors name the list
// item they concern (daemon.serve.tsig_keys[2]) at its line, and never
// quote a secret.
func (c *Config) validateServe() []error {
	var errs []error
	s := c.Daemon.Serve
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	const pre = "daemon.serve."
	if s.DNSListen != "" {
		if err := listenAddr(s.DNSListen, "127.0.0.1:5300"); err != nil {
			bad(c.Where(pre+"dns_listen"), "%v", err)
		}
		if len(s.TSIGKeys) == 0 {
			bad(c.Where(pre+"dns_listen"), "zone transfers are served only to requests signed with a key: set daemon.serve.tsig_keys")
		}
		if !slices.ContainsFunc(c.Daemon.Exports, func(e Export) bool { return e.Format == "rpz" }) {
			bad(c.Where(pre+"dns_listen"), "serves the rpz export: add one to daemon.exports")
		}
	}
	if s.HTTPListen != "" {
		if err := listenAddr(s.HTTPListen, "127.0.0.1:8053"); err != nil {
			bad(c.Where(pre+"http_listen"), "%v", err)
		}
		seen := map[string]int{}
		for i, e := range c.Daemon.Exports {
			name := filepath.Base(e.Out)
			if j, dup := seen[name]; dup && e.Out != "" {
				bad(c.WhereItem("daemon.exports", i+1), "served over HTTP as /%s like export %d: give them different file names", name, j)
			}
			seen[name] = i + 1
		}
	}
	// The token file and the key files are read by the feed package,
	// which serves with them.
	if s.APITokenFile != "" && s.HTTPListen == "" {
		bad(c.Where(pre+"api_token_file"), "the API is served on daemon.serve.http_listen, which is not set")
	}
	names := map[string]int{}
	for i, k := range s.TSIGKeys {
		where := c.WhereItem(pre+"tsig_keys", i+1)
		switch {
		case k.Secret != "" && k.SecretFile != "":
			bad(where, "set secret or secret_file, not both")
			continue
		case k.Secret == "" && k.SecretFile == "":
			bad(where, "set secret (base64, as tsig-keygen prints it) or secret_file")
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(k.Name, "."))
		if j, dup := names[name]; dup {
			bad(where, "key %s is already tsig_keys[%d]", k.Name, j)
		}
		names[name] = i + 1
	}
	for i, a := range s.Notify {
		if _, err := hostPort(a, "53"); err != nil {
			bad(c.Where(pre+"notify"), "address %d: %v", i+1, err)
		}
	}
	if len(s.Notify) > 0 && s.DNSListen == "" {
		bad(c.Where(pre+"notify"), "NOTIFY sends secondaries to the zone served on daemon.serve.dns_listen, which is not set")
	}
	if s.NotifyKey != "" {
		if _, ok := names[strings.ToLower(strings.TrimSuffix(s.NotifyKey, "."))]; !ok {
			bad(c.Where(pre+"notify_key"), "no key named %q in daemon.serve.tsig_keys", s.NotifyKey)
		}
	}
	if s.IXFRVersions < 0 || s.IXFRVersions > 10000 {
		bad(c.Where(pre+"ixfr_versions"), "%d is outside 0..10000", s.IXFRVersions)
	}
	return errs
}

// WhereItem names item i (from 1) of a list: "file:line: list[i]" at the
// item's first line, or just "list[i]".
func (c *Config) WhereItem(list string, i int) string {
	key := fmt.Sprintf("%s[%d]", list, i)
	line := 0
	for _, k := range slices.Sorted(maps.Keys(c.lines)) {
		if l := c.lines[k]; strings.HasPrefix(k, key+".") && (line == 0 || l < line) {
			line = l
		}
	}
	if line == 0 || c.file == "" {
		return key
	}
	return fmt.Sprintf("%s:%d: %s", c.file, line, key)
}
