package feed

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// unboundConf makes Unbound a resolver on 127.0.0.1:port forwarding
// everything to upstream, with the policy zone fluxwatch.rpz downloaded
// from url (the feed's HTTP server) and re-downloaded when the feed sends
// NOTIFY from 127.0.0.1. Its built-in NXDOMAIN for the special-use
// domain test. (RFC 6761) is switched off: the test names live there.
// Unbound 1.17 has no TSIG, so it takes the zone
// over HTTP rather than by zone transfer.
func unboundConf(dir string, port int, upstream, url string) string {
	upHost, upPort := splitHostPort(upstream)
	return fmt.Sprintf(`server:
	interface: 127.0.0.1@%[2]d
	port: %[2]d
	do-ip6: no
	username: ""
	chroot: ""
	directory: "%[1]s"
	pidfile: "%[1]s/unbound.pid"
	use-syslog: no
	logfile: ""
	verbosity: 1
	root-hints: "%[1]s/root.hint"
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	module-config: "respip validator iterator"
	local-zone: "test." nodefault
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: %[3]s@%[4]s
rpz:
	name: "fluxwatch.rpz"
	url: "%[5]s"
	allow-notify: 127.0.0.1
	zonefile: "%[1]s/fluxwatch.rpz.zone"
	rpz-log: yes
`, dir, port, upHost, upPort, url)
}

// TestUnboundRPZ: Unbound loads the RPZ from the feed's HTTP server and
// blocks a listed name and its subdomains while passing others; after a
// publish, the feed's NOTIFY makes it download the new version at once
// (the SOA refresh alone would wait an hour).
func TestUnboundRPZ(t *testing.T) {
	unbound := dnstest.NeedServer(t, "unbound", "unbound")
	dir := t.TempDir()
	upstream := startUpstream(t)
	port := dnstest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	rpz := filepath.Join(dir, "blocklist.rpz")
	writeRPZ(t, rpz, 2026030101, "flux-one.test")
	s, _ := startServer(t, Options{Keys: []Key{testKey}, NotifyTimeout: 500 * time.Millisecond,
		Notify: []Secondary{{Addr: addr}}})
	if err := s.PublishFile(rpz); err != nil {
		t.Fatal(err)
	}
	files, err := NewFileServer(FileOptions{Addr: "127.0.0.1:0", Files: map[string]string{"blocklist.rpz": rpz},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := files.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })

	conf := filepath.Join(dir, "unbound.conf")
	os.WriteFile(conf, []byte(unboundConf(dir, port, upstream, "http://"+files.Addr()+"/blocklist.rpz")), 0o644)
	os.WriteFile(filepath.Join(dir, "root.hint"), []byte(rootHint), 0o644)
	start := time.Now()
	dnstest.StartProcess(t, dir, unbound, "-d", "-c", conf)

	eventually(t, 20*time.Second, "blocking flux-one.test", func() (bool, string) {
		got := answer(addr, "flux-one.test")
		return got == "NXDOMAIN", got
	})
	t.Logf("Unbound loaded the zone over HTTP %s after start", time.Since(start).Round(time.Millisecond))
	expectAnswers(t, addr, map[string]string{
		"www.flux-one.test": "NXDOMAIN",
		"a.b.flux-one.test": "NXDOMAIN",
		"clean.test":        upstreamAddr,
		"benign.test":       upstreamAddr,
		"not-flux-one.test": upstreamAddr,
		"flux-two.test":     upstreamAddr,
	})

	writeRPZ(t, rpz, 2026030102, "flux-two.test")
	published := time.Now()
	if err := s.PublishFile(rpz); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "blocking flux-two.test after NOTIFY", func() (bool, string) {
		got := answer(addr, "flux-two.test")
		return got == "NXDOMAIN", got
	})
	t.Logf("Unbound had the new version %s after the publish", time.Since(published).Round(time.Millisecond))
	expectAnswers(t, addr, map[string]string{
		"sub.flux-two.test": "NXDOMAIN",
		"flux-one.test":     upstreamAddr, // delisted
		"clean.test":        upstreamAddr,
	})
	if st := s.Stats(); st.NotifyAcked < 1 {
		t.Errorf("Unbound acknowledged no NOTIFY: %+v", st)
	}
}
