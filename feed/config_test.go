package feed_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/feed"
)

// A secret made for these tests only.
const testSecret = "c2VydmUtdGVzdC1zZWNyZXQtbm90LXJlYWwtc2VjcmV0IQ=="

// config.Default restates DefaultVersions, which config cannot import.
func TestConfigDefaultVersions(t *testing.T) {
	if config.DefaultIXFRVersions != feed.DefaultVersions {
		t.Fatalf("config.DefaultIXFRVersions %d, feed.DefaultVersions %d", config.DefaultIXFRVersions, feed.DefaultVersions)
	}
}

// loadConfig writes yaml to a file and loads it; FILE in want stands
// for its path.
func loadConfig(t *testing.T, yaml string) (*config.Config, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fluxwatch.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c, path
}

// TestCheckConfigErrors checks the errors of the token and key files a
// configuration names, at the line of the key.
func TestCheckConfigErrors(t *testing.T) {
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
		{"api token too short", "daemon:\n  serve:\n    http_listen: 127.0.0.1:8053\n    api_token_file: testdata/short.token\n",
			[]string{`FILE:4: daemon.serve.api_token_file: testdata/short.token: want one token of at least 16 characters`}},
		{"key secret not base64", rpzExport + "    tsig_keys:\n      - name: ok\n        secret: " + testSecret + "\n      - name: k2\n        secret: \"hunter2 is my password\"\n",
			[]string{`FILE:9: daemon.serve.tsig_keys[2]: key k2: secret is not valid base64`}},
		{"key secret short", rpzExport + "    tsig_keys:\n      - name: k\n        secret: aHVudGVyMg==\n",
			[]string{`FILE:7: daemon.serve.tsig_keys[1]: key k: secret is 7 bytes, want at least 16 (tsig-keygen makes 32)`}},
		{"key bad algorithm", rpzExport + "    tsig_keys:\n      - name: k\n        algorithm: hmac-md5\n        secret: " + testSecret + "\n",
			[]string{`FILE:7: daemon.serve.tsig_keys[1]: key k: algorithm "hmac-md5" is not one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`}},
		{"key bad name", rpzExport + "    tsig_keys:\n      - name: \"a..b\"\n        secret: " + testSecret + "\n",
			[]string{`FILE:7: daemon.serve.tsig_keys[1]: key name "a..b" is not a domain name`}},
		{"secret file missing", rpzExport + "    tsig_keys:\n      - name: k\n        secret_file: " + filepath.Join(dir, "none.key") + "\n",
			[]string{`FILE:7: daemon.serve.tsig_keys[1]: reading TSIG key: open ` + filepath.Join(dir, "none.key") + `: no such file or directory`}},
		{"secret file with two keys", rpzExport + "    tsig_keys:\n      - name: k\n        secret_file: " + keyFile + "\n",
			[]string{`FILE:7: daemon.serve.tsig_keys[1]: reading TSIG key: ` + keyFile + ` holds 2 keys, want one`}},
		{"secret file names another key", rpzExport + "    tsig_keys:\n      - name: other\n        secret_file: testdata/tsig.key\n",
			[]string{`FILE:7: daemon.serve.tsig_keys[1]: testdata/tsig.key holds key "fluxwatch-feed", not "other"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, path := loadConfig(t, tt.yaml)
			err := errors.Join(feed.CheckConfig(c)...)
			if err == nil {
				t.Fatalf("CheckConfig passed, want:\n%s", strings.Join(tt.want, "\n"))
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

func TestConfigKeys(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.key")
	os.WriteFile(plain, []byte(testSecret+"\n"), 0o600)
	sha512File := filepath.Join(dir, "sha512.key")
	os.WriteFile(sha512File, []byte(`key "sha512-in-file" {
	algorithm hmac-sha512;
	secret "`+testSecret+`";
};
`), 0o600)
	c, _ := loadConfig(t, `daemon:
  exports:
    - {format: rpz, out: /srv/a.rpz}
  serve:
    dns_listen: "[::1]:5300"
    tsig_keys:
      - {name: fluxwatch-feed, secret_file: testdata/tsig.key}
      - {name: from-plain-file, algorithm: hmac-sha512, secret_file: `+plain+`}
      - {name: inline, secret: `+testSecret+`}
      - {name: sha512-in-file, secret_file: `+sha512File+`}
`)
	if errs := feed.CheckConfig(c); len(errs) > 0 {
		t.Fatal(errs)
	}
	keys, err := feed.ConfigKeys(c.Daemon.Serve)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 || keys[0].Secret != "Y29uZmlnLXRlc3Qta2V5LW5vdC1hLXJlYWwtc2VjcmV0IQ==" ||
		keys[1].Secret != testSecret || keys[1].Algorithm != "hmac-sha512" || keys[2].Secret != testSecret ||
		keys[3].Secret != testSecret || keys[3].Algorithm != "hmac-sha512" {
		t.Fatalf("keys: %v", keys)
	}
}

func TestAPIToken(t *testing.T) {
	if tok, err := feed.APIToken(config.Serve{}); tok != "" || err != nil {
		t.Fatalf("no token file: %q, %v", tok, err)
	}
	tok, err := feed.APIToken(config.Serve{APITokenFile: "testdata/api.token"})
	if err != nil || len(tok) < 16 {
		t.Fatalf("token %q, %v", tok, err)
	}
}
