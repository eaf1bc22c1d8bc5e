package feed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          Key
		err           string
	}{
		{"tsig-keygen output", "key \"feed\" {\n\talgorithm hmac-sha512;\n\tsecret \"" + testKey.Secret + "\";\n};\n",
			Key{Name: "feed", Algorithm: "hmac-sha512", Secret: testKey.Secret}, ""},
		{"one line, no quotes on the name", `key feed. { algorithm HMAC-SHA256; secret "` + testKey.Secret + `"; };`,
			Key{Name: "feed.", Algorithm: "hmac-sha256", Secret: testKey.Secret}, ""},
		{"the secret alone", testKey.Secret + "\n", Key{Secret: testKey.Secret}, ""},
		{"two keys", `key a { secret "` + testKey.Secret + `"; }; key b { secret "` + testKey.Secret + `"; };`,
			Key{}, "holds 2 keys"},
		{"clause without secret", `key a { algorithm hmac-sha256; };`, Key{}, "has no secret"},
		{"something else", "secret = " + testKey.Secret + "\n", Key{}, "neither a base64 secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			os.WriteFile(path, []byte(tc.content), 0o600)
			got, err := ReadKeyFile(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), testKey.Secret) {
					t.Fatalf("err %v, want one with %q and no secret", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ReadKeyFile = %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file was read")
	}
}

// A key file that is a device or far too big is refused, not read until
// memory runs out.
func TestReadKeyFileRefusesDevicesAndHugeFiles(t *testing.T) {
	if _, err := ReadKeyFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("/dev/zero: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.key")
	os.WriteFile(big, make([]byte, 1<<20), 0o600)
	if _, err := ReadKeyFile(big); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("a 1 MiB key file: %v", err)
	}
}
