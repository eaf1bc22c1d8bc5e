package feed

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// kresdConf makes Knot Resolver 5 a resolver on 127.0.0.1:port that
// applies the RPZ file rpz (watching it for new versions) and sends every
// other query to upstream. A test instance also keeps to loopback: no
// root priming, no trust anchor upkeep, no clock checks against the root,
// and its cache in its own directory.
func kresdConf(dir string, port int, upstream, rpz string) string {
	return fmt.Sprintf(`
for _, m in ipairs({'priming', 'detect_time_skew', 'detect_time_jump', 'ta_update', 'ta_signal_query', 'ta_sentinel'}) do
	modules.unload(m)
end
trust_anchors.remove('.')
net.listen('127.0.0.1', %[2]d, { kind = 'dns' })
cache.open(10 * MB, 'lmdb://%[1]s/cache')
policy.add(policy.rpz(policy.DENY, '%[4]s', true))
policy.add(policy.all(policy.STUB('%[3]s')))
`, dir, port, kresAddr(upstream), rpz)
}

// kresAddr writes HOST:PORT as kresd's HOST@PORT.
func kresAddr(addr string) string {
	h, p := splitHostPort(addr)
	return h + "@" + p
}

// TestKnotResolverRPZ: Knot Resolver loads the RPZ file the exporter
// writes and blocks a listed name and its subdomains with NXDOMAIN while
// passing others; when a publish replaces the file (a new file renamed
// over the old one), it reloads it.
func TestKnotResolverRPZ(t *testing.T) {
	kresd := dnstest.NeedServer(t, "kresd", "knot-resolver")
	dir := t.TempDir()
	upstream := startUpstream(t)
	port := dnstest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rpz := filepath.Join(dir, "blocklist.rpz")
	writeRPZ(t, rpz, 2026030101, "flux-one.test")

	conf := filepath.Join(dir, "kresd.conf")
	os.WriteFile(conf, []byte(kresdConf(dir, port, upstream, rpz)), 0o644)
	start := time.Now()
	dnstest.StartProcess(t, dir, kresd, "-n", "-c", conf, dir)

	eventually(t, 20*time.Second, "blocking flux-one.test", func() (bool, string) {
		got := answer(addr, "flux-one.test")
		return got == "NXDOMAIN", got
	})
	t.Logf("Knot Resolver blocked %s after start", time.Since(start).Round(time.Millisecond))
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
	eventually(t, 15*time.Second, "blocking flux-two.test after the file was replaced", func() (bool, string) {
		got := answer(addr, "flux-two.test")
		return got == "NXDOMAIN", got
	})
	t.Logf("Knot Resolver reloaded the file %s after the publish", time.Since(published).Round(time.Millisecond))
	expectAnswers(t, addr, map[string]string{
		"sub.flux-two.test": "NXDOMAIN",
		"flux-one.test":     upstreamAddr, // delisted
		"clean.test":        upstreamAddr,
	})
}
