package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// A key made for this test only, in tsig-keygen's format.
const (
	daemonTestKeyName = "daemon-test"
	daemonTestSecret  = "ZGFlbW9uLXNlcnZlLXRlc3Qta2V5LW5vdC1yZWFsIQ=="
)

// notifyRecorder is a secondary that records the serials of the NOTIFY it gets.
type notifyRecorder struct {
	mu      sync.Mutex
	serials []uint32
	signed  []bool
}

func (n *notifyRecorder) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if r.Opcode == dns.OpcodeNotify && len(r.Answer) == 1 {
		if soa, ok := r.Answer[0].(*dns.SOA); ok {
			n.mu.Lock()
			n.serials = append(n.serials, soa.Serial)
			n.signed = append(n.signed, r.IsTsig() != nil && w.TsigStatus() == nil)
			n.mu.Unlock()
		}
	}
	m := new(dns.Msg).SetReply(r)
	if t := r.IsTsig(); t != nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	w.WriteMsg(m)
}

func (n *notifyRecorder) last() (uint32, bool, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.serials) == 0 {
		return 0, false, 0
	}
	return n.serials[len(n.serials)-1], n.signed[len(n.signed)-1], len(n.serials)
}

func startNotifyRecorder(t *testing.T) (*notifyRecorder, string) {
	t.Helper()
	rec := &notifyRecorder{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Start(t, &dns.Server{PacketConn: pc, Handler: rec, TsigSecret: map[string]string{daemonTestKeyName + ".": daemonTestSecret}})
	return rec, pc.LocalAddr().String()
}

// daemonTransfer runs an AXFR, or an IXFR from serial when from > 0,
// signed with the test key unless unsigned.
func daemonTransfer(addr string, from uint32, unsigned bool) ([]dns.RR, error) {
	m := new(dns.Msg)
	if from > 0 {
		m.SetIxfr("fluxwatch.rpz.", from, "localhost.", "hostmaster.localhost.")
	} else {
		m.SetAxfr("fluxwatch.rpz.")
	}
	tr := &dns.Transfer{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second}
	if !unsigned {
		m.SetTsig(daemonTestKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{daemonTestKeyName + ".": daemonTestSecret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			return nil, env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs, nil
}

// TestDaemonServesFeed runs the daemon with daemon.serve set: it publishes
// the RPZ export to its DNS server at start and on every publish, notifies the
// secondary (signed), hands the zone out by AXFR and IXFR only with the
// key, serves the export files over HTTP with validators, never logs the
// secret, and closes its listeners when it stops.
func TestDaemonServesFeed(t *testing.T) {
	dir := t.TempDir()
	rec, secondary := startNotifyRecorder(t)
	keyFile := filepath.Join(dir, "feed.key")
	os.WriteFile(keyFile, []byte(fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n",
		daemonTestKeyName, daemonTestSecret)), 0o600)
	rpz, list := filepath.Join(dir, "blocklist.rpz"), filepath.Join(dir, "list.txt")
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`db: %s
resolvers: [127.0.0.1:1]
log_level: info
daemon:
  crawl: "@every 1h"
  classify: "@every 1s"
  publish: "@every 1s"
  exports:
    - {format: rpz, out: %s}
    - {format: domains, out: %s}
  serve:
    dns_listen: 127.0.0.1:0
    http_listen: 127.0.0.1:0
    tsig_keys:
      - {name: %s, secret_file: %s}
    notify: [%q]
    notify_key: %s
    ixfr_versions: 4
`, filepath.Join(dir, "fluxwatch.db"), rpz, list, daemonTestKeyName, keyFile, secondary, daemonTestKeyName)), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"daemon", "--config", cfgPath}, strings.NewReader(""), io.Discard, &stderr)
	}()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	dnsAddr := feedWaitForLog(t, &stderr, `msg="feed: serving zone".* addr=(\S+)`)
	httpAddr := feedWaitForLog(t, &stderr, `msg="feed: serving files" addr=(\S+)`)

	// The start's publish: NOTIFY, signed, with the serial of the file written.
	var first uint32
	feedWaitUntil(t, 10*time.Second, "a NOTIFY", func() bool {
		serial, signed, _ := rec.last()
		first = serial
		return serial != 0 && signed
	})
	rrs, err := daemonTransfer(dnsAddr, 0, false)
	if err != nil {
		t.Fatalf("AXFR from the daemon: %v\n%s", err, stderr.String())
	}
	if soa, ok := rrs[0].(*dns.SOA); !ok || soa.Serial < first || len(rrs) != 3 { // SOA, NS, SOA: nothing listed
		t.Fatalf("AXFR: %v (NOTIFY said serial %d)", rrs, first)
	}

	// A later publish: the secondary at the first serial gets an IXFR.
	feedWaitUntil(t, 10*time.Second, "a second NOTIFY", func() bool {
		serial, _, _ := rec.last()
		return serial > first
	})
	rrs, err = daemonTransfer(dnsAddr, first, false)
	if err != nil {
		t.Fatalf("IXFR: %v", err)
	}
	// Incremental: current SOA, then per version old SOA, new SOA (nothing
	// changed), then the current SOA again; a full answer would carry the NS.
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeSOA {
			t.Fatalf("IXFR from %d was not incremental: %v", first, rrs)
		}
	}
	if len(rrs) < 4 || rrs[1].(*dns.SOA).Serial != first {
		t.Fatalf("IXFR from %d: %v", first, rrs)
	}
	if _, err := daemonTransfer(dnsAddr, 0, true); err == nil || !strings.Contains(err.Error(), "bad xfr rcode: 5") {
		t.Fatalf("an unsigned AXFR: %v, want REFUSED (rcode 5)", err)
	}

	// HTTP: the export files, with validators; never 200 with an unchanged ETag.
	resp, err := http.Get("http://" + httpAddr + "/blocklist.rpz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || tag == "" || resp.Header.Get("Last-Modified") == "" ||
		!strings.HasPrefix(string(body), "; fluxwatch response policy zone, serial ") {
		t.Fatalf("GET /blocklist.rpz: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/blocklist.rpz", nil)
	req.Header.Set("If-None-Match", tag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 && resp.Header.Get("ETag") == tag || resp.StatusCode != 200 && resp.StatusCode != 304 {
		t.Fatalf("conditional GET: %d, ETag %s (sent %s)", resp.StatusCode, resp.Header.Get("ETag"), tag)
	}
	for _, p := range []string{"/", "/list.txt", "/fluxwatch.db", "/feed.key", "/fluxwatch.yaml"} {
		resp, err := http.Get("http://" + httpAddr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 200
		if p == "/fluxwatch.db" || p == "/feed.key" || p == "/fluxwatch.yaml" {
			want = 404
		}
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", p, resp.StatusCode, want)
		}
	}

	// /metrics counts what the zone server did: the transfers above, the
	// refusal, the acknowledged NOTIFYs.
	resp, err = http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`fluxwatch_feed_transfers_total{kind="axfr"} [1-9]`, `fluxwatch_feed_transfers_total{kind="ixfr_incremental"} [1-9]`,
		`fluxwatch_feed_refused_total{reason="refused"} 1\n`, `fluxwatch_feed_refused_total{reason="bad_tsig"} 0\n`,
		`fluxwatch_feed_notifies_acked_total [1-9]`, `fluxwatch_feed_serial [1-9]`} {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(string(body), "fluxwatch_feed_"))
		}
	}

	cancel()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if strings.Contains(stderr.String(), daemonTestSecret) {
		t.Fatalf("the secret is in the daemon's log:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `reason="transfer without TSIG"`) {
		t.Errorf("the refused transfer was not logged:\n%s", stderr.String())
	}
	for _, addr := range []string{dnsAddr, httpAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening after the daemon stopped", addr)
		}
	}
}

// TestDaemonRefusesBusyFeedPort: a daemon whose feed cannot listen does not start.
func TestDaemonRefusesBusyFeedPort(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`db: %s
resolvers: [127.0.0.1:1]
daemon:
  exports:
    - {format: rpz, out: %s}
  serve:
    http_listen: %s
`, filepath.Join(dir, "fluxwatch.db"), filepath.Join(dir, "b.rpz"), ln.Addr())), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = run(ctx, []string{"daemon", "--config", cfgPath}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
		t.Fatalf("daemon with a busy HTTP port: %v", err)
	}
}

// feedWaitForLog waits for a log line matching pattern and returns its first group.
func feedWaitForLog(t *testing.T, log *syncBuffer, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	var got string
	feedWaitUntil(t, 10*time.Second, "log "+pattern, func() bool {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			got = m[1]
			return true
		}
		return false
	})
	return got
}

func feedWaitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
