package config_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fluxwatch/fluxwatch/config"
)

// A secret made for these tests only.
const testSecret = "c2VydmUtdGVzdC1zZWNyZXQtbm90LXJlYWwtc2VjcmV0IQ=="

func TestServeErrors(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "two.key")
	os.WriteFile(keyFile, []byte(`key "a" { algorithm hmac-sha256; secret "`+testSecret+`"; };
key "b" { algorithm hmac-sha256; secret "`+testSecret+`"; };
`), 0o600)
	const rpzExport = "daemon:\n  exports:\n    - format: rpz\n      out: /srv/a.rpz\n  serve:\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"dns_listen without a host", rpzExport + "    dns_listen: \":5300\"\n    tsig_keys: [{name: k, secret: " + testSecret + "}]\n",
			[]string{`FILE:6: daemon.serve.dns_listen: ":5300": want IP:PORT, e.g. 127.0.0.1:5300 (0.0.0.0 or [::] for every interface)`}},
		{"dns_listen a name", rpzExport + "    dns_listen: localhost:5300\n    tsig_keys: [{name: k, secret: " + testSecret + "}]\n",
			[]string{`FILE:6: daemon.serve.dns_listen: "localhost:5300": want IP:PORT, e.g. 127.0.0.1:5300 (0.0.0.0 or [::] for every interface)`}},
		{"dns_listen without keys", rpzExport + "    dns_listen: 127.0.0.1:5300\n",
			[]string{`FILE:6: daemon.serve.dns_listen: zone transfers are served only to requests signed with a key: set daemon.serve.tsig_keys`}},
		{"dns_listen without an rpz export", "daemon:\n  serve:\n    dns_listen: 127.0.0.1:5300\n    tsig_keys: [{name: k, secret: " + testSecret + "}]\n",
			[]string{`FILE:3: daemon.serve.dns_listen: serves the rpz export: add one to daemon.exports`}},
		{"http_listen bad port", rpzExport + "    http_listen: 127.0.0.1:99999\n",
			[]string{`FILE:6: daemon.serve.http_listen: "127.0.0.1:99999": bad port`}},
		{"api token file without http_listen", "daemon:\n  serve:\n    api_token_file: testdata/api.token\n",
			[]string{`FILE:3: daemon.serve.api_token_file: the API is served on daemon.serve.http_listen, which is not set`}},
		{"http_listen two exports of one name", "daemon:\n  exports:\n    - format: rpz\n      out: /a/list\n    - format: hosts\n      out: /b/list\n  serve:\n    http_listen: 127.0.0.1:8053\n",
			[]string{`FILE:5: daemon.exports[2]: served over HTTP as /list like export 1: give them different file names`}},
		{"key without secret", rpzExport + "    tsig_keys:\n      - name: k\n        algorithm: hmac-sha256\n",
			[]string{`FILE:7: daemon.serve.tsig_keys[1]: set secret (base64, as tsig-keygen prints it) or secret_file`}},
		{"key with both", rpzExport + "    tsig_keys:\n      - name: k\n        secret: " + testSecret + "\n        secret_file: /x\n",
			[]string{`FILE:7: daemon.serve.tsig_keys[1]: set secret or secret_file, not both`}},
		{"key twice", rpzExport + "    tsig_keys:\n      - {name: k, secret: " + testSecret + "}\n      - {name: K., secret: " + testSecret + "}\n",
			[]string{`FILE:8: daemon.serve.tsig_keys[2]: key K. is already tsig_keys[1]`}},
		{"unknown key field", rpzExport + "    tsig_keys:\n      - name: k\n        secrett: x\n",
			[]string{`FILE:8: daemon.serve.tsig_keys[1].secrett: unknown key`}},
		{"notify without dns_listen", rpzExport + "    notify: [192.0.2.1]\n",
			[]string{`FILE:6: daemon.serve.notify: NOTIFY sends secondaries to the zone served on daemon.serve.dns_listen, which is not set`}},
		{"notify a name", rpzExport + "    dns_listen: 127.0.0.1:5300\n    tsig_keys: [{name: k, secret: " + testSecret + "}]\n    notify: [192.0.2.1, ns1.example.test]\n",
			[]string{`FILE:8: daemon.serve.notify: address 2: "ns1.example.test": want an IP address, with :PORT or without`}},
		{"notify_key unknown", rpzExport + "    dns_listen: 127.0.0.1:5300\n    tsig_keys: [{name: k, secret: " + testSecret + "}]\n    notify_key: other\n",
			[]string{`FILE:8: daemon.serve.notify_key: no key named "other" in daemon.serve.tsig_keys`}},
		{"ixfr_versions negative", rpzExport + "    ixfr_versions: -1\n",
			[]string{`FILE:6: daemon.serve.ixfr_versions: -1 is outside 0..10000`}},
		{"unknown serve key", rpzExport + "    dns_port: 53\n",
			[]string{`FILE:6: daemon.serve.dns_port: unknown key`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fluxwatch.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(path)
			if err == nil {
				t.Fatalf("Load succeeded, want:\n%s", strings.Join(tt.want, "\n"))
			}
			want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "FILE", path)
			if err.Error() != want {
				t.Fatalf("error:\n%s\nwant:\n%s", err, want)
			}
			for _, secret := range []string{testSecret, "hunter2", "aHVudGVyMg=="} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestServeKeysAndNotify(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.key")
	os.WriteFile(plain, []byte(testSecret+"\n"), 0o600)
	sha512File := filepath.Join(dir, "sha512.key")
	os.WriteFile(sha512File, []byte(`key "sha512-in-file" {
	algorithm hmac-sha512;
	secret "`+testSecret+`";
};
`), 0o600)
	path := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`daemon:
  exports:
    - {format: rpz, out: /srv/a.rpz}
  serve:
    dns_listen: "[::1]:5300"
    tsig_keys:
      - {name: fluxwatch-feed, secret_file: testdata/tsig.key}
      - {name: from-plain-file, algorithm: hmac-sha512, secret_file: %s}
      - {name: inline, secret: %s}
      - {name: sha512-in-file, secret_file: %s}
    notify: [192.0.2.1, "192.0.2.2:5353", "[2001:db8::1]", "[2001:db8::2]:54"]
`, plain, testSecret, sha512File)), 0o644)
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.1:53", "192.0.2.2:5353", "[2001:db8::1]:53", "[2001:db8::2]:54"}
	if got := c.Daemon.Serve.NotifyAddrs(); !slices.Equal(got, want) {
		t.Fatalf("notify addresses %v, want %v", got, want)
	}
	if c.Daemon.Serve.IXFRVersions != 16 {
		t.Fatalf("ixfr_versions default %d", c.Daemon.Serve.IXFRVersions)
	}

	// A configured key never prints its secret.
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("serve", "serve", c.Daemon.Serve, "key", c.Daemon.Serve.TSIGKeys[2])
	fmt.Fprintf(&b, "%v %+v %#v %s", c.Daemon.Serve, c.Daemon.Serve, c.Daemon.Serve, c.Daemon.Serve.TSIGKeys[2])
	if strings.Contains(b.String(), testSecret) {
		t.Fatalf("a secret was printed: %s", b.String())
	}
}
