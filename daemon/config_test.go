package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxwatch/fluxwatch/config"
)

// TestCheckConfigErrors checks the exact text of the errors of the checks
// config.Validate leaves to the components the daemon builds. FILE stands for the file's
// path.
func TestCheckConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown export format", "daemon:\n  exports:\n    - format: xml\n      out: list.xml\n",
			[]string{`FILE:2: daemon.exports: export 1: format "xml" is not one of domains, hosts, rpz, dnsmasq, unbound, adblock, stix, misp, jsonl, csv, ips, nftables, ipset, suricata`}},
		{"seed URL not http", "daemon:\n  seed_urls:\n    - url: https://feeds.example/a.txt\n    - url: ftp://feeds.example/b.txt\n      source: b\n",
			[]string{`FILE:4: daemon.seed_urls[2].url: "ftp://feeds.example/b.txt" is not an http or https URL`}},
		{"seed URL without host", "daemon:\n  seed_urls:\n    - url: /var/lib/list.txt\n",
			[]string{`FILE:3: daemon.seed_urls[1].url: "/var/lib/list.txt" is not an http or https URL`}},
		{"seed URL that does not parse", "daemon:\n  seed_urls:\n    - {url: \"http://[::1\"}\n",
			[]string{`FILE:3: daemon.seed_urls[1].url: parse "http://[::1": missing ']' in host`}},
		{"seed URL twice", "daemon:\n  seed_urls:\n    - url: https://feeds.example/a.txt\n    - url: https://feeds.example/a.txt\n      column: host\n",
			[]string{`FILE:4: daemon.seed_urls[2].url: "https://feeds.example/a.txt" is listed twice`}},
		{"nats with two credentials", "daemon:\n  nats:\n    url: nats://127.0.0.1:4222\n    user: fw\n    token_file: ../config/testdata/api.token\n",
			[]string{`FILE:3: daemon.nats.url: nats: give one of user, token, nkey seed and credentials file`}},
		{"api token too short", "daemon:\n  serve:\n    http_listen: 127.0.0.1:8053\n    api_token_file: ../config/testdata/short.token\n",
			[]string{`FILE:4: daemon.serve.api_token_file: ../config/testdata/short.token: want one token of at least 16 characters`}},
		{"several", "daemon:\n  exports:\n    - format: xml\n      out: list.xml\n  seed_urls:\n    - url: ftp://feeds.example/b.txt\n",
			[]string{`FILE:2: daemon.exports: export 1: format "xml" is not one of domains, hosts, rpz, dnsmasq, unbound, adblock, stix, misp, jsonl, csv, ips, nftables, ipset, suricata`,
				`FILE:6: daemon.seed_urls[1].url: "ftp://feeds.example/b.txt" is not an http or https URL`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fluxwatch.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckConfig(cfg)
			want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "FILE", path)
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}
