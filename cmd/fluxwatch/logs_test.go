package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// --log-format json makes every log line one JSON object with time, level
// and message; the default is key=value text. Neither logs per query at
// the default level, and no progress bar reaches a non-terminal.
func TestLogFormats(t *testing.T) {
	w := startWorld(t, 3)
	db, vantages := seedWorld(t, w)
	args := append([]string{"crawl", "--db", db, "--qps", "0", "--delegation=false", "--log-level", "info"}, vantages...)
	stdout, stderr, err := fw(t, "", append(args, "--log-format", "json")...)
	if err != nil {
		t.Fatalf("crawl: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) < 2 || len(lines) > 10 {
		t.Fatalf("%d log lines for one round:\n%s", len(lines), stderr)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil || rec["time"] == nil {
			t.Fatalf("log line %q is not a JSON record: %v", l, err)
		}
	}
	if !strings.HasPrefix(stdout, "crawl: ") {
		t.Fatalf("summary %q", stdout)
	}
	_, stderr, err = fw(t, "", args...)
	if err != nil || !strings.Contains(stderr, "level=INFO msg=") || strings.Contains(stderr, "\r") {
		t.Fatalf("text logs: %v\n%q", err, stderr)
	}
}
