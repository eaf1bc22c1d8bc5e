package feed

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// fakeSecondary records the NOTIFY messages it gets and answers from the
// (drop+1)th on; before that it stays silent, like a busy server.
type fakeSecondary struct {
	mu       sync.Mutex
	drop     int
	got      []*dns.Msg
	tsigErrs []error
	addr     string
}

func startSecondary(t *testing.T, drop int) *fakeSecondary {
	t.Helper()
	f := &fakeSecondary{drop: drop}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = pc.LocalAddr().String()
	dnstest.Start(t, &dns.Server{PacketConn: pc, Handler: f, TsigSecret: map[string]string{"fluxwatch-test.": testKey.Secret}})
	return f
}

func (f *fakeSecondary) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	f.mu.Lock()
	f.got = append(f.got, r)
	f.tsigErrs = append(f.tsigErrs, w.TsigStatus())
	answer := len(f.got) > f.drop
	f.mu.Unlock()
	if !answer {
		return
	}
	m := new(dns.Msg).SetReply(r)
	if t := r.IsTsig(); t != nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	w.WriteMsg(m)
}

func (f *fakeSecondary) received() ([]*dns.Msg, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*dns.Msg(nil), f.got...), append([]error(nil), f.tsigErrs...)
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNotifySignedAndRetried(t *testing.T) {
	signed := startSecondary(t, 0)
	flaky := startSecondary(t, 2) // answers the third NOTIFY
	s, _ := startServer(t, Options{NotifyTimeout: 50 * time.Millisecond, Notify: []Secondary{
		{Addr: signed.addr, Key: "fluxwatch-test"}, {Addr: flaky.addr},
	}})
	if err := s.Publish(testZone(t, 77, "a.test")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two acknowledgements", func() bool { return s.Stats().NotifyAcked == 2 })

	got, tsigErrs := signed.received()
	if len(got) != 1 {
		t.Fatalf("the answering secondary got %d NOTIFY, want 1", len(got))
	}
	m := got[0]
	if m.Opcode != dns.OpcodeNotify || !m.Authoritative || m.Question[0].Name != "fluxwatch.rpz." ||
		m.Question[0].Qtype != dns.TypeSOA || len(m.Answer) != 1 || m.Answer[0].(*dns.SOA).Serial != 77 {
		t.Fatalf("NOTIFY: %v", m)
	}
	if m.IsTsig() == nil || tsigErrs[0] != nil {
		t.Fatalf("NOTIFY not signed with the key: tsig %v, verification %v", m.IsTsig(), tsigErrs[0])
	}
	got, _ = flaky.received()
	if len(got) != 3 || got[0].IsTsig() != nil {
		t.Fatalf("the flaky secondary got %d NOTIFY (want 3, unsigned)", len(got))
	}
	if st := s.Stats(); st.NotifySent != 4 || st.NotifyFailed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNotifyGivesUp(t *testing.T) {
	dead := startSecondary(t, 1000)
	s, logs := startServer(t, Options{NotifyTimeout: 20 * time.Millisecond, NotifyRetries: 2,
		Notify: []Secondary{{Addr: dead.addr, Key: "fluxwatch-test"}}})
	if err := s.Publish(testZone(t, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "giving up", func() bool { return s.Stats().NotifyFailed == 1 })
	if got, _ := dead.received(); len(got) != 3 {
		t.Fatalf("sent %d NOTIFY, want 1 + 2 retries", len(got))
	}
	waitFor(t, "the warning", func() bool { return strings.Contains(logs.String(), "did not acknowledge NOTIFY") })
}

// TestCloseCancelsNotify: retries that would run for minutes stop at Close.
func TestCloseCancelsNotify(t *testing.T) {
	dead := startSecondary(t, 1000)
	s, _ := startServer(t, Options{NotifyTimeout: 200 * time.Millisecond, NotifyRetries: 10,
		Notify: []Secondary{{Addr: dead.addr}}})
	if err := s.Publish(testZone(t, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first NOTIFY", func() bool { got, _ := dead.received(); return len(got) > 0 })
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s", d)
	}
}

// A version published before Start is served from Start but announced to
// no one (nothing listened to fetch it from); the next one is announced,
// and an IXFR from the first gets the differences.
func TestPublishBeforeStartNotifiesNoOne(t *testing.T) {
	sec := startSecondary(t, 0)
	s, err := NewServer(Options{Zone: "fluxwatch.rpz", Addr: "127.0.0.1:0", Keys: []Key{testKey},
		NotifyTimeout: 50 * time.Millisecond, Notify: []Secondary{{Addr: sec.addr}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Publish(testZone(t, 10, "a.test")); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got, _ := sec.received(); len(got) != 0 || s.Stats().NotifySent != 0 {
		t.Fatalf("NOTIFY sent for a version published before Start: %v", got)
	}
	if err := s.Publish(testZone(t, 11, "a.test", "b.test")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the NOTIFY of serial 11", func() bool { return s.Stats().NotifyAcked == 1 })
	if got, _ := sec.received(); len(got) != 1 || got[0].Answer[0].(*dns.SOA).Serial != 11 {
		t.Fatalf("NOTIFYs %v; want one, of serial 11", got)
	}
	rrs, err := xfr(t, s.Addr(), dns.TypeIXFR, 10, &testKey)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.IXFRIncremental != 1 || len(rrs) != 6 { // SOA 11, SOA 10, SOA 11, b.test and *.b.test added, SOA 11
		t.Fatalf("IXFR from 10: %v (%+v); want the differences", rrs, st)
	}
}
