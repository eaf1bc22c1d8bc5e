package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// secondarySerial returns the serial BIND serves for fluxwatch.rpz, or
// what it answered instead.
func secondarySerial(addr string) (uint32, string) {
	m := new(dns.Msg).SetQuestion("fluxwatch.rpz.", dns.TypeSOA)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		return 0, err.Error()
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, fmt.Sprintf("serial %d", soa.Serial)
		}
	}
	return 0, dns.RcodeToString[r.Rcode]
}

// A daemon restarted between two zone transfers: BIND, its secondary,
// refreshes from the restarted daemon within its retry interval, gets the
// list as the database holds it now (changed while the daemon was down)
// by an incremental transfer, and the serial went up. The daemon sends no
// NOTIFY here: BIND's own refresh and retry timers (two seconds, where
// the zone's SOA says an hour and ten minutes) are what must find the
// restarted daemon serving.
func TestDaemonRestartBetweenTransfers(t *testing.T) {
	named := dnstest.NeedServer(t, "named", "bind9")
	dir := t.TempDir()
	db := filepath.Join(dir, "fluxwatch.db")
	storeListed(t, db, []string{"first.test"}, time.Now().Add(time.Hour))
	keyFile := filepath.Join(dir, "feed.key")
	os.WriteFile(keyFile, []byte(fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n",
		daemonTestKeyName, daemonTestSecret)), 0o600)
	feedAddr := fmt.Sprintf("127.0.0.1:%d", dnstest.FreePort(t))
	rpz := filepath.Join(dir, "blocklist.rpz")
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(cfgPath, []byte(idleDaemonYAML(db, fmt.Sprintf(`  exports:
    - {format: rpz, out: %s}
  serve:
    dns_listen: %s
    http_listen: 127.0.0.1:0
    tsig_keys:
      - {name: %s, secret_file: %s}
`, rpz, feedAddr, daemonTestKeyName, keyFile))), 0o644)

	logs, stop := startDaemon(t, cfgPath)
	feedWaitForLog(t, logs, `msg="daemon (started)"`)
	first := rpzSerial(t, rpz)

	const retry = 2 // seconds: BIND's refresh and retry intervals
	bindDir := filepath.Join(dir, "bind")
	os.Mkdir(bindDir, 0o755)
	bindAddr := fmt.Sprintf("127.0.0.1:%d", dnstest.FreePort(t))
	bindHost, bindPort := splitHostPortTest(t, bindAddr)
	feedHost, feedPort := splitHostPortTest(t, feedAddr)
	conf := filepath.Join(bindDir, "named.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[3]s { %[2]s; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	min-refresh-time %[8]d;
	max-refresh-time %[8]d;
	min-retry-time %[8]d;
	max-retry-time %[8]d;
};
controls { };
include "%[4]s";
zone "fluxwatch.rpz" {
	type secondary;
	primaries port %[6]s { %[5]s key "%[7]s"; };
	file "fluxwatch.rpz.db";
};
`, bindDir, bindHost, bindPort, keyFile, feedHost, feedPort, daemonTestKeyName, retry)), 0o644)
	dnstest.StartProcess(t, bindDir, named, "-g", "-4", "-n", "1", "-c", conf)
	waitSerial := func(what string, timeout time.Duration, want uint32) {
		t.Helper()
		for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
			serial, state := secondarySerial(bindAddr)
			if serial == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: BIND not at serial %d after %s: %s\ndaemon:\n%s", what, want, timeout, state, logs.String())
			}
		}
	}
	waitSerial("the first transfer", 20*time.Second, first)

	// Restart, with a name listed while the daemon was down.
	if err := stop(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}
	storeListed(t, db, []string{"second.test"}, time.Now().Add(time.Hour))
	time.Sleep(retry*time.Second + time.Second) // BIND's refresh fails meanwhile: it retries
	logs, stop = startDaemon(t, cfgPath)
	feedWaitForLog(t, logs, `msg="daemon (started)"`)
	httpAddr := feedWaitForLog(t, logs, `msg="feed: serving files" addr=(\S+)`)
	restarted := time.Now()
	second := rpzSerial(t, rpz)
	if second <= first {
		t.Fatalf("the restarted daemon serves serial %d, not after %d", second, first)
	}
	// The timer that fired while the daemon was down, and its retry.
	waitSerial("the transfer from the restarted daemon", 2*retry*time.Second+3*time.Second, second)
	t.Logf("BIND at serial %d %s after the restart (it was at %d)", second, time.Since(restarted).Round(time.Millisecond), first)
	m := new(dns.Msg).SetQuestion("second.test.fluxwatch.rpz.", dns.TypeCNAME)
	if r, err := dns.Exchange(m, bindAddr); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("BIND's copy lacks the name listed while the daemon was down: %v, %v", r, err)
	}
	// The restarted daemon served the version BIND held before its own,
	// so BIND's IXFR got the differences, not the whole zone again.
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `fluxwatch_feed_transfers_total{kind="ixfr_incremental"} 1`+"\n") ||
		!strings.Contains(string(body), `fluxwatch_feed_transfers_total{kind="axfr"} 0`+"\n") ||
		!strings.Contains(string(body), `fluxwatch_feed_transfers_total{kind="ixfr_full"} 0`+"\n") {
		t.Errorf("BIND's transfer from the restarted daemon was not incremental:\n%s", grepLines(string(body), "fluxwatch_feed_"))
	}
	if err := stop(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	}
}

func splitHostPortTest(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}
