package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/daemon"
)

// daemonConfig writes a daemon config over the simulated world w through
// the given vantages.
func daemonConfig(t *testing.T, path, db, dir string, vantages []string, extra string) {
	t.Helper()
	cfg := fmt.Sprintf(`db: %s
resolvers: [%s]
qps: 0
delegation: false
list_without_ip_tables: true
min_interval: 1s
max_interval: 2s
log_level: info
daemon:
  crawl: "@every 1s"
  classify: "@every 1s"
  publish: "@every 1s"
  seeds: "@every 1s"
  seed_dir: %s
  exports:
    - format: domains
      out: %s
  serve:
    http_listen: 127.0.0.1:0
    api_token_file: %s
%s`, db, strings.Join(vantages, ", "), filepath.Join(dir, "incoming"), filepath.Join(dir, "list.txt"), filepath.Join(dir, "token"), extra)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The operator's view of a running daemon: seed files dropped in the
// watched directory are imported once; /metrics and /status show the work;
// SIGHUP reloads the vantages (a broken config changes nothing); the API
// writes only with the token, which never reaches the logs; and `fluxwatch
// status` reads it all back.
func TestDaemonOperations(t *testing.T) {
	w := startWorld(t, 13)
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	os.Mkdir(filepath.Join(dir, "incoming"), 0o755)
	const token = "s3cret-token-for-the-api-0123456789"
	os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600)
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	vantages := w.Vantages()
	daemonConfig(t, cfgPath, db, dir, vantages[:2], "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- execute(ctx, []string{"daemon", "--config", cfgPath}, &stdio{in: strings.NewReader(""), out: &logs, err: &logs})
	}()
	addr := feedWaitForLog(t, &logs, `msg="feed: serving files" addr=(\S+)`)
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	// A seed file dropped in the directory (written whole, then renamed in).
	var seedList bytes.Buffer
	w.WriteSeeds(&seedList)
	tmp := filepath.Join(dir, "incoming", ".world.txt.part")
	os.WriteFile(tmp, seedList.Bytes(), 0o644)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(tmp, old, old)
	os.Rename(tmp, filepath.Join(dir, "incoming", "world.txt"))
	feedWaitUntil(t, 15*time.Second, "the seed file imported and moved", func() bool {
		_, err := os.Stat(filepath.Join(dir, "incoming", "imported", "world.txt"))
		return err == nil
	})
	feedWaitUntil(t, 15*time.Second, "queries counted in /metrics", func() bool {
		m := get("/metrics")
		return strings.Contains(m, `fluxwatch_queries_total{outcome="ok",qtype="A",vantage="`+vantages[0]+`"}`) &&
			strings.Contains(m, `fluxwatch_job_runs_total{job="classify"}`)
	})
	if m := get("/metrics"); strings.Contains(m, `vantage="`+vantages[3]+`"`) {
		t.Fatalf("a vantage not configured was asked:\n%s", m)
	}

	// SIGHUP with all four vantages: the new ones are asked.
	daemonConfig(t, cfgPath, db, dir, vantages, "")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	feedWaitForLog(t, &logs, `msg=reloaded .*vantages=(4)`)
	feedWaitUntil(t, 15*time.Second, "the added vantage asked", func() bool {
		return strings.Contains(get("/metrics"), `vantage="`+vantages[3]+`"`)
	})
	// A broken config changes nothing.
	os.WriteFile(cfgPath, []byte("db: "+db+"\nqps: -5\n"), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	feedWaitForLog(t, &logs, `msg="reload failed; the running configuration stays" err="(.*qps)`)

	var st daemon.Status
	feedWaitUntil(t, 10*time.Second, "a classification in /status", func() bool {
		json.Unmarshal([]byte(get("/status")), &st)
		return st.Verdicts["single-flux"] > 0
	})
	if len(st.Jobs) != 5 || st.Jobs[0].Runs == 0 || st.Jobs[0].NextRun.IsZero() || len(st.Vantages) != 4 ||
		st.Listed < st.Verdicts["single-flux"]+st.Verdicts["double-flux"] ||
		st.Domains == nil || st.Domains.Active != len(w.Domains()) {
		t.Fatalf("/status: %+v", st)
	}

	// Writes need the token.
	post := func(path, auth, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	name := w.Domains()[0].Name
	body := `{"domain": "` + name + `", "reason": "test"}`
	if code := post("/api/delist", "", body); code != http.StatusUnauthorized {
		t.Fatalf("delist without a token: %d", code)
	}
	if code := post("/api/delist", "wrong-token-wrong-token", body); code != http.StatusUnauthorized {
		t.Fatalf("delist with a wrong token: %d", code)
	}
	if code := post("/api/delist", token, `{"domain": "never-seeded.test"}`); code != http.StatusNotFound {
		t.Fatalf("delist of an unknown name: %d", code)
	}
	if code := post("/api/delist", token, body); code != http.StatusOK {
		t.Fatalf("delist with the token: %d", code)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("the API token reached the logs")
	}
	out, _, err := fw(t, "", "status", "--db", db)
	if err != nil || !strings.Contains(out, "daemon: not running") || !strings.Contains(out, "crawl") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	out, _, err = fw(t, "", "blocklist", "history", "--db", db, name)
	if err != nil || !strings.Contains(out, "delisted") || !strings.Contains(out, "reason: test") {
		t.Fatalf("history after the API's delisting: %v\n%s", err, out)
	}
}

// A daemon that cannot do all it is configured to do does not start.
func TestDaemonRefusesHalfConfiguredStart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	base := func(extra string) string {
		return fmt.Sprintf("db: %s\nresolvers: [127.0.0.1:1]\n%s", db, extra)
	}
	for _, c := range []struct{ name, cfg, want string }{
		{"export into a missing directory", base("daemon:\n  exports:\n    - format: rpz\n      out: " + filepath.Join(dir, "nope", "x.rpz") + "\n"),
			"daemon.exports: cannot publish"},
		{"missing seed file", base("daemon:\n  seed_files: [" + filepath.Join(dir, "missing.txt") + "]\n"),
			"daemon.seed_files"},
		{"missing seed directory", base("daemon:\n  seed_dir: " + filepath.Join(dir, "nodir") + "\n"),
			"daemon.seed_dir"},
		{"missing ASN table", base("asn_db: [" + filepath.Join(dir, "asn.tsv") + "]\n"),
			"loading ASN table"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			os.WriteFile(path, []byte(c.cfg), 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var logs syncBuffer
			err := execute(ctx, []string{"daemon", "--config", path}, &stdio{in: strings.NewReader(""), out: &logs, err: &logs})
			if err == nil || !strings.Contains(err.Error(), c.want) || ctx.Err() != nil {
				t.Fatalf("daemon: %v; want an error about %q at once", err, c.want)
			}
			if strings.Contains(logs.String(), "daemon started") {
				t.Fatal("the daemon started")
			}
		})
	}
}

// idleDaemonYAML is the config of a daemon on db whose jobs all wait an
// hour, so that nothing runs unless the test makes it, followed by more
// (lines under daemon:, indented two spaces).
func idleDaemonYAML(db, more string) string {
	return fmt.Sprintf(`db: %s
resolvers: [127.0.0.1:1]
log_level: info
daemon:
  crawl: "@every 1h"
  classify: "@every 1h"
  publish: "@every 1h"
`, db) + more
}
