package feed

import (
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// Test keys: made for these tests, never used anywhere else.
var (
	testKey  = Key{Name: "fluxwatch-test", Secret: "ZmVlZC10ZXN0LWtleS1ub3QtYS1yZWFsLXNlY3JldCE="}
	otherKey = Key{Name: "other", Algorithm: "hmac-sha512", Secret: "b3RoZXIta2V5LWZvci1mZWVkLXRlc3RzLW9ubHktISE="}
)

// logBuffer collects a logger's output for assertions, safely across goroutines.
type logBuffer = dnstest.Output

// startServer starts a Server on a free loopback port, closed at cleanup.
func startServer(t testing.TB, opts Options) (*Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Zone == "" {
		opts.Zone = "fluxwatch.rpz"
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Keys == nil {
		opts.Keys = []Key{testKey, otherKey}
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// xfr runs a zone transfer of type qtype (from serial, for IXFR) signed
// with key (unsigned when nil) and returns the records and the error.
func xfr(t testing.TB, addr string, qtype uint16, from uint32, key *Key) ([]dns.RR, error) {
	t.Helper()
	m := new(dns.Msg)
	if qtype == dns.TypeIXFR {
		m.SetIxfr("fluxwatch.rpz.", from, "localhost.", "hostmaster.localhost.")
	} else {
		m.SetAxfr("fluxwatch.rpz.")
	}
	tr := &dns.Transfer{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second}
	if key != nil {
		name := dns.Fqdn(key.Name)
		m.SetTsig(name, dns.Fqdn(key.algorithm()), 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{name: key.Secret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			return rrs, env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs, nil
}

// exchange sends m over network to addr and returns the reply.
func exchange(t testing.TB, network, addr string, m *dns.Msg, secrets map[string]string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, TsigSecret: secrets}
	r, _, err := c.Exchange(m, addr)
	if err != nil && r == nil {
		t.Fatalf("%s exchange: %v", network, err)
	}
	return r
}

func TestAXFRAndIXFR(t *testing.T) {
	s, _ := startServer(t, Options{Versions: 4})
	if err := s.Publish(testZone(t, 10, "a.test", "b.test")); err != nil {
		t.Fatal(err)
	}
	rrs, err := xfr(t, s.Addr(), dns.TypeAXFR, 0, &testKey)
	if err != nil {
		t.Fatalf("AXFR with the key: %v", err)
	}
	want := []string{"SOA 10", "*.a.test CNAME .", "*.b.test CNAME .", "a.test CNAME .", "b.test CNAME .",
		"fluxwatch.rpz. NS localhost.", "SOA 10"}
	if got := show(rrs); !slices.Equal(got, want) {
		t.Fatalf("AXFR:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The other key, with its own algorithm, works too.
	if _, err := xfr(t, s.Addr(), dns.TypeAXFR, 0, &otherKey); err != nil {
		t.Fatalf("AXFR with the second key: %v", err)
	}

	if err := s.Publish(testZone(t, 11, "b.test", "c.test")); err != nil {
		t.Fatal(err)
	}
	rrs, err = xfr(t, s.Addr(), dns.TypeIXFR, 10, &testKey)
	if err != nil {
		t.Fatalf("IXFR: %v", err)
	}
	want = []string{"SOA 11", "SOA 10", "*.a.test CNAME .", "a.test CNAME .", "SOA 11", "*.c.test CNAME .",
		"c.test CNAME .", "SOA 11"}
	if got := show(rrs); !slices.Equal(got, want) {
		t.Fatalf("IXFR from 10:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// An unknown serial gets the whole zone.
	rrs, err = xfr(t, s.Addr(), dns.TypeIXFR, 3, &testKey)
	if err != nil || len(rrs) != 7 || show(rrs)[0] != "SOA 11" || show(rrs)[6] != "SOA 11" {
		t.Fatalf("IXFR from an unknown serial: %v %v", show(rrs), err)
	}
	st := s.Stats()
	if st.AXFR != 2 || st.IXFRIncremental != 1 || st.IXFRFull != 1 || st.Serial != 11 || st.Versions != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLargeTransfer checks a zone needing many messages arrives whole, each
// message signed in the TSIG chain the client verifies.
func TestLargeTransfer(t *testing.T) {
	s, _ := startServer(t, Options{})
	var names []string
	for i := range 5000 {
		names = append(names, strings.Repeat("x", 40)+"-n"+strconv.Itoa(i)+".test")
	}
	if err := s.Publish(testZone(t, 1, names...)); err != nil {
		t.Fatal(err)
	}
	rrs, err := xfr(t, s.Addr(), dns.TypeAXFR, 0, &testKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs) != 2*5000+3 {
		t.Fatalf("got %d records, want %d", len(rrs), 2*5000+3)
	}
	names = append(names[:0:0], names[:2500]...)
	if err := s.Publish(testZone(t, 2, names...)); err != nil {
		t.Fatal(err)
	}
	rrs, err = xfr(t, s.Addr(), dns.TypeIXFR, 1, &testKey)
	if err != nil || len(rrs) != 2*2500+4 {
		t.Fatalf("IXFR deleting 2500 names: %d records, %v", len(rrs), err)
	}
}

// TestTransferNeedsKey: without TSIG a transfer is REFUSED, with an unknown
// key, a wrong secret or the wrong algorithm it is NOTAUTH; no record
// leaves, each refusal is logged with the key's name and never a secret.
func TestTransferNeedsKey(t *testing.T) {
	s, logs := startServer(t, Options{})
	if err := s.Publish(testZone(t, 7, "listed.test")); err != nil {
		t.Fatal(err)
	}
	wrongSecret := Key{Name: testKey.Name, Secret: otherKey.Secret}
	unknown := Key{Name: "stranger", Secret: testKey.Secret}
	wrongAlg := Key{Name: testKey.Name, Algorithm: "hmac-sha512", Secret: testKey.Secret}
	for _, tc := range []struct {
		name  string
		key   *Key
		qtype uint16
	}{
		{"AXFR without key", nil, dns.TypeAXFR},
		{"IXFR without key", nil, dns.TypeIXFR},
		{"AXFR wrong secret", &wrongSecret, dns.TypeAXFR},
		{"IXFR wrong secret", &wrongSecret, dns.TypeIXFR},
		{"AXFR unknown key", &unknown, dns.TypeAXFR},
		{"AXFR wrong algorithm", &wrongAlg, dns.TypeAXFR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rrs, err := xfr(t, s.Addr(), tc.qtype, 1, tc.key)
			if err == nil || len(rrs) > 0 {
				t.Fatalf("transfer succeeded: %d records, err %v", len(rrs), err)
			}
			// Look at the rcode itself, unverified (the client rejects the
			// unsigned error reply before its rcode).
			m := new(dns.Msg)
			if tc.qtype == dns.TypeIXFR {
				m.SetIxfr("fluxwatch.rpz.", 1, "localhost.", "hostmaster.localhost.")
			} else {
				m.SetAxfr("fluxwatch.rpz.")
			}
			var secrets map[string]string
			if tc.key != nil {
				m.SetTsig(dns.Fqdn(tc.key.Name), dns.Fqdn(tc.key.algorithm()), 300, time.Now().Unix())
				secrets = map[string]string{dns.Fqdn(tc.key.Name): tc.key.Secret}
			}
			r := exchange(t, "tcp", s.Addr(), m, secrets)
			wantRcode := dns.RcodeNotAuth
			if tc.key == nil {
				wantRcode = dns.RcodeRefused
			}
			if r.Rcode != wantRcode || len(r.Answer) != 0 {
				t.Fatalf("rcode %s with %d answers, want %s and none", dns.RcodeToString[r.Rcode], len(r.Answer),
					dns.RcodeToString[wantRcode])
			}
			if tc.key != nil {
				ts := r.IsTsig()
				if ts == nil || ts.Error != dns.RcodeBadKey && ts.Error != dns.RcodeBadSig {
					t.Fatalf("NOTAUTH without a TSIG error: %v", ts)
				}
			}
		})
	}
	out := logs.String()
	for _, secret := range []string{testKey.Secret, otherKey.Secret} {
		if strings.Contains(out, secret) {
			t.Fatalf("a secret is in the log:\n%s", out)
		}
	}
	for _, want := range []string{"reason=\"transfer without TSIG\"", "reason=\"bad signature\"", "reason=\"unknown key\"",
		"reason=\"wrong algorithm for the key\"", "key=stranger."} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	if st := s.Stats(); st.AXFR != 0 || st.IXFRIncremental+st.IXFRFull != 0 || st.Refused < 2 || st.BadTSIG < 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOtherQueriesRefused: the server answers the zone's SOA (UDP and TCP,
// signed or not) and nothing else.
func TestOtherQueriesRefused(t *testing.T) {
	s, _ := startServer(t, Options{})
	q := func(name string, qtype uint16) *dns.Msg { return new(dns.Msg).SetQuestion(name, qtype) }
	// Before the first publish there is no zone to answer from.
	if r := exchange(t, "udp", s.Addr(), q("fluxwatch.rpz.", dns.TypeSOA), nil); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("SOA before any publish: %s", dns.RcodeToString[r.Rcode])
	}
	// An unsigned transfer is refused before the first publish too: it
	// does not learn whether there is a zone.
	if r := exchange(t, "tcp", s.Addr(), new(dns.Msg).SetAxfr("fluxwatch.rpz."), nil); r.Rcode != dns.RcodeRefused {
		t.Fatalf("unsigned AXFR before any publish: %s", dns.RcodeToString[r.Rcode])
	}
	if err := s.Publish(testZone(t, 42, "listed.test")); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, network, s.Addr(), q("FluxWatch.RPZ.", dns.TypeSOA), nil)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 42 {
			t.Fatalf("%s SOA: %v", network, r)
		}
	}
	signed := q("fluxwatch.rpz.", dns.TypeSOA)
	signed.SetTsig("fluxwatch-test.", dns.HmacSHA256, 300, time.Now().Unix())
	if r := exchange(t, "udp", s.Addr(), signed, map[string]string{"fluxwatch-test.": testKey.Secret}); r.Rcode != dns.RcodeSuccess || r.IsTsig() == nil {
		t.Fatalf("signed SOA: %v", r)
	}
	for _, tc := range []*dns.Msg{
		q("listed.test.fluxwatch.rpz.", dns.TypeCNAME), // zone data is only for transfers
		q("fluxwatch.rpz.", dns.TypeNS),
		q("fluxwatch.rpz.", dns.TypeANY),
		q("example.com.", dns.TypeA),
		q("example.com.", dns.TypeAXFR),
		new(dns.Msg).SetNotify("fluxwatch.rpz."),
	} {
		if r := exchange(t, "udp", s.Addr(), tc, nil); r.Rcode != dns.RcodeRefused || len(r.Answer) > 0 {
			t.Errorf("%v: %s with %d answers, want REFUSED", tc.Question[0], dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
	// AXFR over UDP is refused even with the key; IXFR over UDP gets the SOA
	// alone (RFC 1995: retry over TCP).
	axfr := new(dns.Msg).SetAxfr("fluxwatch.rpz.")
	axfr.SetTsig("fluxwatch-test.", dns.HmacSHA256, 300, time.Now().Unix())
	if r := exchange(t, "udp", s.Addr(), axfr, map[string]string{"fluxwatch-test.": testKey.Secret}); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP: %s", dns.RcodeToString[r.Rcode])
	}
	ixfr := new(dns.Msg).SetIxfr("fluxwatch.rpz.", 1, "localhost.", "hostmaster.localhost.")
	ixfr.SetTsig("fluxwatch-test.", dns.HmacSHA256, 300, time.Now().Unix())
	r := exchange(t, "udp", s.Addr(), ixfr, map[string]string{"fluxwatch-test.": testKey.Secret})
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 42 {
		t.Errorf("IXFR over UDP: %v", r)
	}
}

func TestPublishKeepsServedVersionOnError(t *testing.T) {
	s, _ := startServer(t, Options{})
	if err := s.Publish(testZone(t, 5, "a.test")); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(testZone(t, 4, "b.test")); err == nil {
		t.Fatal("a lower serial was published")
	}
	if err := s.PublishFile("testdata/does-not-exist.rpz"); err == nil {
		t.Fatal("a missing file was published")
	}
	rrs, err := xfr(t, s.Addr(), dns.TypeAXFR, 0, &testKey)
	if err != nil || show(rrs)[0] != "SOA 5" || !slices.Contains(show(rrs), "a.test CNAME .") {
		t.Fatalf("served after failed publishes: %v %v", show(rrs), err)
	}
}

func TestNewServerChecksOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"bad zone", Options{Zone: "a..b"}, "not a domain name"},
		{"bad secret", Options{Zone: "z", Keys: []Key{{Name: "k", Secret: "not base64!"}}}, "not valid base64"},
		{"short secret", Options{Zone: "z", Keys: []Key{{Name: "k", Secret: "c2hvcnQ="}}}, "at least 16"},
		{"bad algorithm", Options{Zone: "z", Keys: []Key{{Name: "k", Algorithm: "hmac-md5", Secret: testKey.Secret}}}, "hmac-md5"},
		{"duplicate key", Options{Zone: "z", Keys: []Key{testKey, testKey}}, "twice"},
		{"notify bad address", Options{Zone: "z", Notify: []Secondary{{Addr: "127.0.0.1"}}}, "notify address"},
		{"notify unknown key", Options{Zone: "z", Keys: []Key{testKey}, Notify: []Secondary{{Addr: "127.0.0.1:53", Key: "nope"}}}, "no key named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewServer: %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testKey.Secret) || strings.Contains(err.Error(), "not base64!") {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	var b logBuffer
	l := slog.New(slog.NewTextHandler(&b, nil))
	l.Info("key", "key", testKey)
	l.Info("keys", "keys", []Key{testKey})
	s := b.String() + testKey.String() + testKey.GoString()
	if strings.Contains(s, testKey.Secret) {
		t.Fatalf("secret printed: %s", s)
	}
}

// TestStartFailsOnBusyPort: a second server on the same address fails to start.
func TestStartFailsOnBusyPort(t *testing.T) {
	s, _ := startServer(t, Options{})
	other, err := NewServer(Options{Zone: "fluxwatch.rpz", Addr: s.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err == nil {
		other.Close()
		t.Fatal("started on a busy port")
	}
	if _, _, err := net.SplitHostPort(s.Addr()); err != nil {
		t.Fatal(err)
	}
}
