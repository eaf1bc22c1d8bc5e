package feed

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// pdnsConf is a PowerDNS Recursor 4 configuration: a resolver on
// 127.0.0.1:port forwarding everything to upstream (dont-query emptied,
// or it refuses loopback targets), no DNSSEC, no security polling, root
// hints that lead nowhere but loopback. Its packet cache answers before the
// policy is looked at, so a policy answer (the NXDOMAIN of a name since
// delisted) outlives a zone update until the entry expires: packetcache-ttl
// keeps that to two seconds here.
func pdnsConf(dir string, port int, upstream string) string {
	return fmt.Sprintf(`local-address=127.0.0.1
local-port=%[2]d
socket-dir=%[1]s
lua-config-file=%[1]s/rpz.lua
forward-zones-recurse=.=%[3]s
dont-query=
dnssec=off
security-poll-suffix=
hint-file=%[1]s/root.hint
daemon=no
disable-syslog=yes
log-timestamp=no
threads=1
quiet=yes
packetcache-ttl=2
`, dir, port, upstream)
}

// pdnsLua makes the recursor a TSIG-authenticated secondary of the feed
// for the policy zone: AXFR first, then IXFR every refresh seconds
// (PowerDNS Recursor 4 polls; it does not take NOTIFY).
func pdnsLua(feed string, key Key, refresh int) string {
	return fmt.Sprintf(`rpzPrimary(%q, "fluxwatch.rpz", {tsigname=%q, tsigalgo=%q, tsigsecret=%q, refresh=%d, policyName="fluxwatch"})
`, feed, key.Name, key.algorithm(), key.Secret, refresh)
}

// TestPowerDNSRecursorRPZ: PowerDNS Recursor, a TSIG-authenticated RPZ
// secondary of the feed, gets the zone by AXFR, blocks a listed name and
// its subdomains and passes others, then picks a new version up by IXFR.
func TestPowerDNSRecursorRPZ(t *testing.T) {
	recursor := dnstest.NeedServer(t, "pdns_recursor", "pdns-recursor")
	dir := t.TempDir()
	upstream := startUpstream(t)
	port := dnstest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	s, logs := startServer(t, Options{Keys: []Key{testKey}})
	rpz := filepath.Join(dir, "blocklist.rpz")
	writeRPZ(t, rpz, 2026030101, "flux-one.test", "delisted-later.test")
	if err := s.PublishFile(rpz); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "recursor.conf"), []byte(pdnsConf(dir, port, upstream)), 0o644)
	os.WriteFile(filepath.Join(dir, "rpz.lua"), []byte(pdnsLua(s.Addr(), testKey, 1)), 0o644)
	os.WriteFile(filepath.Join(dir, "root.hint"), []byte(rootHint), 0o644)
	start := time.Now()
	dnstest.StartProcess(t, dir, recursor, "--config-dir="+dir)

	eventually(t, 20*time.Second, "blocking flux-one.test", func() (bool, string) {
		got := answer(addr, "flux-one.test")
		return got == "NXDOMAIN", got
	})
	if st := s.Stats(); st.AXFR < 1 {
		t.Fatalf("the recursor blocks, but the feed saw no AXFR: %+v", st)
	}
	t.Logf("PowerDNS Recursor loaded the zone by AXFR %s after start", time.Since(start).Round(time.Millisecond))
	expectAnswers(t, addr, map[string]string{
		"www.flux-one.test":   "NXDOMAIN",
		"a.b.flux-one.test":   "NXDOMAIN",
		"delisted-later.test": "NXDOMAIN",
		"clean.test":          upstreamAddr,
		"benign.test":         upstreamAddr,
		"not-flux-one.test":   upstreamAddr,
		// Not flux-two.test: the recursor's packet cache would keep its
		// answer for the upstream's TTL after the zone lists it.
	})

	before := s.Stats()
	writeRPZ(t, rpz, 2026030102, "flux-one.test", "flux-two.test")
	if err := s.PublishFile(rpz); err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	eventually(t, 15*time.Second, "blocking flux-two.test", func() (bool, string) {
		got := answer(addr, "flux-two.test")
		return got == "NXDOMAIN", got
	})
	if after := s.Stats(); after.IXFRIncremental <= before.IXFRIncremental || after.AXFR != before.AXFR {
		t.Fatalf("no incremental IXFR: before %+v, after %+v", before, after)
	}
	t.Logf("PowerDNS Recursor had the new version by IXFR %s after the publish", time.Since(published).Round(time.Millisecond))
	expectAnswers(t, addr, map[string]string{
		"sub.flux-two.test": "NXDOMAIN",
		"clean.test":        upstreamAddr,
	})
	eventually(t, 10*time.Second, "passing the delisted name once its cached policy answer expired", func() (bool, string) {
		got := answer(addr, "delisted-later.test")
		return got == upstreamAddr, got
	})
	if st := s.Stats(); st.BadTSIG != 0 || st.Refused != 0 {
		t.Errorf("the recursor's requests were refused: %+v\n%s", st, logs.String())
	}
}
