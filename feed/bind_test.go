package feed

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// bindConf makes BIND a recursive resolver on 127.0.0.1:port that
// forwards everything to upstream, applies the policy zone fluxwatch.rpz,
// and holds that zone as a secondary of the feed at feed, fetched and
// refreshed with the TSIG key. It is what the README tells operators,
// plus what a test needs (min-update-interval 0: apply a new version at
// once, not up to 60 s later): its own directory, no control channel, IPv4 and
// loopback only, and root hints that lead nowhere but loopback.
func bindConf(dir string, port int, upstream, feed, keyFile, keyName string) string {
	upHost, upPort := splitHostPort(upstream)
	feedHost, feedPort := splitHostPort(feed)
	return fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { 127.0.0.0/8; };
	allow-recursion { 127.0.0.0/8; };
	dnssec-validation no;
	forwarders { %[3]s port %[4]s; };
	forward only;
	notify no;
	response-policy { zone "fluxwatch.rpz" min-update-interval 0; };
};
controls { };
include "%[6]s";
zone "." { type hint; file "root.hint"; };
zone "fluxwatch.rpz" {
	type secondary;
	primaries port %[8]s { %[7]s key "%[5]s"; };
	file "fluxwatch.rpz.db";
	allow-query { 127.0.0.0/8; };
};
`, dir, port, upHost, upPort, keyName, keyFile, feedHost, feedPort)
}

// rootHint points root priming at loopback, should BIND try it.
const rootHint = ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.0.0.1\n"

// TestBINDSecondary: BIND 9, a TSIG-authenticated secondary of the feed
// with response-policy, gets the zone by AXFR, blocks a listed name and
// its subdomains with NXDOMAIN and passes others; after a publish the
// feed's NOTIFY makes it fetch the change by IXFR (its refresh timer alone
// would wait an hour), after which a newly listed name is blocked and a
// delisted one passes again.
func TestBINDSecondary(t *testing.T) {
	named := dnstest.NeedServer(t, "named", "bind9")
	dir := t.TempDir()
	upstream := startUpstream(t)
	port := dnstest.FreePort(t)
	bindAddr := fmt.Sprintf("127.0.0.1:%d", port)

	// One key file for both sides, as tsig-keygen writes it: BIND includes
	// it, the feed reads the secret from it.
	keyFile := filepath.Join(dir, "feed.key")
	os.WriteFile(keyFile, []byte(fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", testKey.Name, testKey.Secret)), 0o600)
	key, err := ReadKeyFile(keyFile)
	if err != nil || key != (Key{Name: testKey.Name, Algorithm: "hmac-sha256", Secret: testKey.Secret}) {
		t.Fatalf("ReadKeyFile: %v, %v", key, err)
	}
	s, logs := startServer(t, Options{Keys: []Key{key}, NotifyTimeout: 500 * time.Millisecond,
		Notify: []Secondary{{Addr: bindAddr, Key: key.Name}}})
	rpz := filepath.Join(dir, "blocklist.rpz")
	writeRPZ(t, rpz, 2026030101, "flux-one.test", "delisted-later.test")
	if err := s.PublishFile(rpz); err != nil {
		t.Fatal(err)
	}

	conf := filepath.Join(dir, "named.conf")
	os.WriteFile(conf, []byte(bindConf(dir, port, upstream, s.Addr(), keyFile, key.Name)), 0o644)
	os.WriteFile(filepath.Join(dir, "root.hint"), []byte(rootHint), 0o644)
	start := time.Now()
	dnstest.StartProcess(t, dir, named, "-g", "-4", "-n", "1", "-c", conf)

	eventually(t, 20*time.Second, "serving serial 2026030101 from AXFR", func() (bool, string) {
		serial, state := soaSerial(bindAddr, "fluxwatch.rpz")
		return serial == 2026030101, state
	})
	if st := s.Stats(); st.AXFR < 1 {
		t.Fatalf("BIND has the zone but the feed saw no AXFR: %+v", st)
	}
	t.Logf("BIND loaded the zone by AXFR %s after start", time.Since(start).Round(time.Millisecond))
	expectAnswers(t, bindAddr, map[string]string{
		"flux-one.test":          "NXDOMAIN",
		"www.flux-one.test":      "NXDOMAIN",
		"a.b.flux-one.test":      "NXDOMAIN",
		"delisted-later.test":    "NXDOMAIN",
		"clean.test":             upstreamAddr,
		"benign.test":            upstreamAddr, // in the verdicts, but not listed
		"not-flux-one.test":      upstreamAddr, // a suffix match is not a subdomain
		"flux-two.test":          upstreamAddr,
		"www.delisted-never.org": upstreamAddr,
	})

	before := s.Stats()
	writeRPZ(t, rpz, 2026030102, "flux-one.test", "flux-two.test")
	published := time.Now()
	if err := s.PublishFile(rpz); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "at serial 2026030102 after NOTIFY", func() (bool, string) {
		serial, state := soaSerial(bindAddr, "fluxwatch.rpz")
		return serial == 2026030102, state
	})
	after := s.Stats()
	if after.IXFRIncremental <= before.IXFRIncremental || after.AXFR != before.AXFR || after.IXFRFull != before.IXFRFull {
		t.Fatalf("BIND did not update by an incremental IXFR: before %+v, after %+v", before, after)
	}
	if after.NotifyAcked < 1 { // the first publish came before BIND listened
		t.Errorf("BIND acknowledged no NOTIFY: %+v", after)
	}
	t.Logf("BIND at the new serial by IXFR %s after the publish", time.Since(published).Round(time.Millisecond))
	expectAnswers(t, bindAddr, map[string]string{
		"flux-one.test":          "NXDOMAIN",
		"flux-two.test":          "NXDOMAIN",
		"deep.sub.flux-two.test": "NXDOMAIN",
		"delisted-later.test":    upstreamAddr, // the IXFR's deletions applied
		"clean.test":             upstreamAddr,
	})
	if st := s.Stats(); st.BadTSIG != 0 || st.Refused != 0 {
		t.Errorf("BIND's requests were refused: %+v\n%s", st, logs.String())
	}
}

func splitHostPort(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}
