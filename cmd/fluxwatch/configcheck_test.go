package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file the daemon's components refuse (daemon.CheckConfig) is refused
// by every command, as a usage error naming its line.
func TestEveryCommandRefusesWhatTheDaemonWould(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fluxwatch.yaml")
	os.WriteFile(path, []byte("daemon:\n  seed_urls:\n    - url: ftp://feeds.example/b.txt\n"), 0o644)
	err := run(context.Background(), []string{"status", "--config", path, "--db", filepath.Join(t.TempDir(), "x.db")}, nil, io.Discard, io.Discard)
	want := path + `:3: daemon.seed_urls[1].url: "ftp://feeds.example/b.txt" is not an http or https URL`
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), want) {
		t.Fatalf("status with the file: %v", err)
	}
}
