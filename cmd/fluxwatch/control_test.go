package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/control"
	"github.com/fluxwatch/fluxwatch/daemon"
)

// heldOutputs runs the read commands and returns what each printed and
// the files each wrote, by command line.
func heldOutputs(t *testing.T, db, outDir string) map[string]string {
	t.Helper()
	os.MkdirAll(outDir, 0o755)
	got := map[string]string{}
	for _, args := range readCommands(db, outDir) {
		if args[0] == "status" {
			continue // says who holds the database: compared on its own
		}
		stdout, stderr, err := fw(t, "", args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		got[strings.ReplaceAll(strings.Join(args, " "), outDir, "OUT")] = strings.ReplaceAll(stdout, outDir, "OUT")
	}
	if b, err := os.ReadFile(filepath.Join(outDir, "verdicts.jsonl")); err == nil {
		got["verdicts.jsonl"] = string(b)
	}
	if fi, err := os.Stat(filepath.Join(outDir, "report.html")); err != nil || fi.Size() < 1000 {
		t.Fatalf("report.html: %v", err)
	}
	return got
}

// heldBy runs status --json and returns who it says holds the database.
func heldBy(t *testing.T, db string) *control.Holder {
	t.Helper()
	stdout, stderr, err := fw(t, "", "status", "--db", db, "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	var st daemon.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	return st.HeldBy
}

func waitForSocket(t *testing.T, db string) {
	t.Helper()
	feedWaitUntil(t, 20*time.Second, "the control socket", func() bool {
		_, err := control.Dial(control.SocketPath(db))
		return err == nil
	})
}

// While the daemon runs, every command works through its control socket
// and prints what it prints with the daemon stopped; writes go through
// the daemon's locks (a delisting takes effect at the next publish, a
// classification counts as the daemon's), and the commands that need the
// database to themselves say who holds it.
func TestCommandsThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	smallDB(t, db)
	storeListed(t, db, []string{"held-a.test", "held-b.test"}, time.Now().Add(24*time.Hour))
	list := filepath.Join(dir, "list.txt")
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`db: %s
resolvers: [127.0.0.1:1]
log_level: info
daemon:
  crawl: "@every 1h"
  classify: "@every 1h"
  publish: "@every 1s"
  exports:
    - {format: domains, out: %s}
`, db, list)), 0o644)

	// Reads: the same through the daemon as without it.
	logs, stop := startDaemon(t, cfgPath)
	feedWaitForLog(t, logs, `msg="daemon (started)"`)
	waitForSocket(t, db)
	if fi, err := os.Stat(control.SocketPath(db)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, %v; want mode 0600", fi, err)
	}
	if h := heldBy(t, db); h == nil || h.Kind != "daemon" || h.PID != os.Getpid() {
		t.Fatalf("status while the daemon runs: held by %+v", h)
	}
	stdout, _, err := fw(t, "", "status", "--db", db)
	if err != nil || !strings.Contains(stdout, fmt.Sprintf("daemon: running (pid %d)", os.Getpid())) {
		t.Fatalf("status: %v\n%s", err, stdout)
	}
	through := heldOutputs(t, db, filepath.Join(dir, "through"))
	_, _, errThrough := fw(t, "", "show", "--db", db, "unknown.test")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(control.SocketPath(db)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket outlived the daemon: %v", err)
	}
	alone := heldOutputs(t, db, filepath.Join(dir, "alone"))
	for cmd, want := range alone {
		if through[cmd] != want {
			t.Errorf("%s through the daemon printed\n%s\nand on its own\n%s", cmd, through[cmd], want)
		}
	}
	_, _, errAlone := fw(t, "", "show", "--db", db, "unknown.test")
	if errThrough == nil || errAlone == nil || errThrough.Error() != errAlone.Error() {
		t.Errorf("show of an unknown domain: %v through the daemon, %v on its own", errThrough, errAlone)
	}
	if h := heldBy(t, db); h != nil {
		t.Errorf("status with no daemon: held by %+v", h)
	}

	// Writes: through the daemon's locks.
	logs, stop = startDaemon(t, cfgPath)
	feedWaitForLog(t, logs, `msg="daemon (started)"`)
	waitForSocket(t, db)
	if got, _ := os.ReadFile(list); !strings.Contains(string(got), "held-a.test") {
		t.Fatalf("the start published %q; want held-a.test in it", got)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"new-one.test\n", []string{"seeds", "add", "--db", db, "--source", "stdin", "-"}, "seeds: 1 added"},
		{"", []string{"seeds", "remove", "--db", db, "calm.test"}, "seeds: 1 removed"},
		{"", []string{"blocklist", "delist", "--db", db, "--reason", "through the socket", "held-a.test"}, ""},
		{"", []string{"classify", "--db", db}, "domains:"},
		{"", []string{"db", "backup", "--db", db, "--out", filepath.Join(dir, "backup.db")}, "checked"},
	} {
		stdout, stderr, err := fw(t, c.stdin, c.args...)
		if err != nil || !strings.Contains(stdout, c.want) {
			t.Fatalf("%v: %v\n%s%s", c.args, err, stdout, stderr)
		}
	}
	// The classification let the publishes go; the next one leaves the
	// delisted domain out.
	feedWaitUntil(t, 20*time.Second, "a publish without held-a.test", func() bool {
		b, _ := os.ReadFile(list)
		names := strings.Fields(string(b))
		return !slices.Contains(names, "held-a.test") && slices.Contains(names, "held-b.test")
	})
	stdout, _, _ = fw(t, "", "seeds", "list", "--db", db)
	if !strings.Contains(stdout, "new-one.test\t") || !strings.Contains(stdout, "sources=stdin") || strings.Contains(stdout, "calm.test") {
		t.Errorf("seeds list after the writes:\n%s", stdout)
	}
	if _, stderr, err := fw(t, "", "crawl", "--db", db, "--resolver", "127.0.0.1:1"); err == nil ||
		!strings.Contains(err.Error(), "held by a daemon (pid") {
		t.Errorf("crawl while the daemon runs: %v\n%s", err, stderr)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if stdout, _, err := fw(t, "", "db", "check", "--db", filepath.Join(dir, "backup.db")); err != nil || !strings.Contains(stdout, "is sound") {
		t.Errorf("the backup taken through the daemon: %v\n%s", err, stdout)
	}
}

// While a crawl runs, the other commands work through it; it cannot
// classify (the daemon can), and says so.
func TestCommandsThroughACrawl(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	smallDB(t, db)
	storeListed(t, db, []string{"held-a.test", "held-b.test"}, time.Now().Add(24*time.Hour))
	seedsBefore, _, _ := fw(t, "", "seeds", "list", "--db", db, "--all")
	listBefore, _, _ := fw(t, "", "blocklist", "list", "--db", db)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var crawlOut syncBuffer
	go func() {
		done <- run(ctx, []string{"crawl", "--db", db, "--resolver", "127.0.0.1:1", "--rounds", "100000",
			"--interval", "50ms", "--timeout", "20ms", "--quiet"}, strings.NewReader(""), &crawlOut, &crawlOut)
	}()
	waitForSocket(t, db)
	if h := heldBy(t, db); h == nil || h.Kind != "crawl" {
		t.Fatalf("status while a crawl runs: held by %+v", h)
	}
	if stdout, _, err := fw(t, "", "status", "--db", db); err != nil || !strings.Contains(stdout, "held by a crawl (pid") {
		t.Errorf("status while a crawl runs: %v\n%s", err, stdout)
	}
	// Every read works (the crawl stores what it measures meanwhile, so
	// only the lists are compared).
	for _, args := range readCommands(db, dir) {
		if _, stderr, err := fw(t, "", args...); err != nil {
			t.Errorf("%v through the crawl: %v\n%s", args, err, stderr)
		}
	}
	if got, _, err := fw(t, "", "seeds", "list", "--db", db, "--all"); err != nil || got != seedsBefore {
		t.Errorf("seeds list through the crawl: %v\n%s\nwant\n%s", err, got, seedsBefore)
	}
	if got, _, err := fw(t, "", "blocklist", "list", "--db", db); err != nil || got != listBefore {
		t.Errorf("blocklist list through the crawl: %v\n%s\nwant\n%s", err, got, listBefore)
	}
	if _, _, err := fw(t, "", "classify", "--db", db); err == nil || !strings.Contains(err.Error(), "a crawl (pid") {
		t.Errorf("classify through a crawl: %v; want it refused", err)
	}
	if stdout, _, err := fw(t, "", "classify", "--db", db, "--dry-run"); err != nil || !strings.Contains(stdout, "dry run") {
		t.Errorf("classify --dry-run through a crawl: %v\n%s", err, stdout)
	}
	if _, stderr, err := fw(t, "", "blocklist", "delist", "--db", db, "held-b.test"); err != nil {
		t.Errorf("delist through a crawl: %v\n%s", err, stderr)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the crawl did not stop")
	}
	stdout, _, err := fw(t, "", "blocklist", "list", "--db", db)
	if err != nil || strings.Contains(stdout, "held-b.test") || !strings.Contains(stdout, "held-a.test") {
		t.Errorf("after the crawl: blocklist list %v\n%s", err, stdout)
	}
}

// A client in one directory, a daemon in another: the relative paths of
// the client's config file are the client's, standard input reaches the
// daemon, and a binary client prints and exits as it does alone.
func TestThroughTheDaemonPathsAreTheClients(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	smallDB(t, db)
	daemonDir, clientDir := filepath.Join(dir, "daemon"), filepath.Join(dir, "client")
	os.Mkdir(daemonDir, 0o755)
	os.Mkdir(clientDir, 0o755)
	os.WriteFile(filepath.Join(daemonDir, "fluxwatch.yaml"), []byte(fmt.Sprintf(`db: %s
resolvers: [127.0.0.1:1]
daemon:
  crawl: "@every 1h"
  classify: "@every 1h"
  publish: "@every 1h"
`, db)), 0o644)
	os.WriteFile(filepath.Join(clientDir, "allow.txt"), []byte("flux.test\n"), 0o644)
	os.WriteFile(filepath.Join(clientDir, "client.yaml"), []byte("allowlist: [allow.txt]\nlist_without_ip_tables: true\n"), 0o644)

	daemon := exec.Command(bin, "daemon", "--config", "fluxwatch.yaml")
	daemon.Dir = daemonDir
	var daemonLog syncBuffer
	daemon.Stdout, daemon.Stderr = &daemonLog, &daemonLog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			daemon.Process.Signal(syscall.SIGTERM)
			daemon.Wait()
		}
	}
	t.Cleanup(stop)
	waitForSocket(t, db)

	t.Chdir(clientDir)
	// runBin feeds x.test on standard input.
	if out, errOut, code := runBin(t, bin, "seeds", "add", "--db", db, "--source", "pipe", "-"); code != 0 || !strings.Contains(out, "seeds: 1 added") {
		t.Fatalf("seeds add - through the daemon: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := runBin(t, bin, "show", "--db", db); code != 2 || !strings.Contains(errOut, "show needs exactly one DOMAIN") {
		t.Errorf("a usage error: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runBin(t, bin, "show", "--db", db, "unknown.test"); code != 1 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("a failure through the daemon: exit %d, %q; want 1 and one line", code, errOut)
	}
	classifyArgs := []string{"classify", "--db", db, "--config", "client.yaml", "--dry-run", "--json"}
	through, stderr, err := fw(t, "", classifyArgs...)
	if err != nil {
		t.Fatalf("classify through the daemon: %v\n%s\n%s", err, stderr, daemonLog.String())
	}
	// A relative --out is the client's too.
	if _, stderr, err := fw(t, "", "export", "--db", db, "--format", "jsonl", "--all", "--out", "verdicts.jsonl"); err != nil {
		t.Fatalf("export through the daemon: %v\n%s", err, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(clientDir, "verdicts.jsonl")); err != nil || !strings.Contains(string(b), "calm.test") {
		t.Errorf("export --out verdicts.jsonl through the daemon: %v %q", err, b)
	}
	showThrough, _, code := runBin(t, bin, "show", "--db", db, "flux.test")
	if code != 0 {
		t.Fatalf("show through the daemon exited %d", code)
	}
	stop()

	alone, _, err := fw(t, "", classifyArgs...)
	// The same verdicts; the allowlist's path is absolute through the
	// daemon.
	stamps := regexp.MustCompile(`"classified_at":"[^"]*"`)
	through = strings.ReplaceAll(stamps.ReplaceAllString(through, ""), clientDir+"/", "")
	if alone = stamps.ReplaceAllString(alone, ""); err != nil || alone != through {
		t.Errorf("classify: through the daemon\n%s\non its own (%v)\n%s", through, err, alone)
	}
	if !strings.Contains(alone, `"allowlisted"`) && !strings.Contains(alone, "allowlist") {
		t.Errorf("the client's allowlist did not apply:\n%s", alone)
	}
	if showAlone, _, _ := runBin(t, bin, "show", "--db", db, "flux.test"); showAlone != showThrough {
		t.Errorf("show: through the daemon\n%s\non its own\n%s", showThrough, showAlone)
	}
	if out, _, _ := fw(t, "", "seeds", "list", "--db", db); !strings.Contains(out, "x.test\t") {
		t.Errorf("the name sent on standard input is not stored:\n%s", out)
	}
}
