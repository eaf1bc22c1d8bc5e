package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fluxwatch/fluxwatch/config"
)

// TestCheckConfig checks that a daemon.nats section the coordinator would
// refuse is named at the line of its URL.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "nats.token")
	os.WriteFile(token, []byte("a-token-for-tests-only\n"), 0o600)
	path := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(path, []byte("daemon:\n  nats:\n    url: nats://127.0.0.1:4222\n    user: fw\n    token_file: "+token+"\n"), 0o644)
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := path + ":3: daemon.nats.url: nats: give one of user, token, nkey seed and credentials file"
	if err := CheckConfig(c); err == nil || err.Error() != want {
		t.Fatalf("CheckConfig = %v, want %s", err, want)
	}
	if err := CheckConfig(config.Default()); err != nil {
		t.Fatalf("no daemon.nats: %v", err)
	}
	c.Daemon.NATS.User = ""
	if err := CheckConfig(c); err != nil {
		t.Fatalf("one credential: %v", err)
	}
	if cc := CoordinatorConfigOf(c); cc.Conn.URL != "nats://127.0.0.1:4222" || cc.Conn.TokenFile != token || cc.MinInterval != c.MinInterval {
		t.Fatalf("CoordinatorConfigOf: %+v", cc)
	}
}
