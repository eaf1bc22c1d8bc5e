package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// fakeQuerier answers every A query with 192.0.2.1 (TTL 60) and every
// other type with an empty NOERROR.
type fakeQuerier struct{}

var _ crawler.Querier = fakeQuerier{}

func (fakeQuerier) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Response, m.RecursionAvailable = true, true
	if qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
	}
	return m, time.Millisecond, nil
}

// testProbe is a probe of domain through vantage at start.
func testProbe(domain, vantage string, start time.Time, addr string) obs.Probe {
	return obs.Probe{Domain: domain, Vantage: vantage, Start: start, Observations: []obs.Observation{{
		Time: start.Add(time.Millisecond), Vantage: vantage, Name: domain, QType: dns.TypeA, Flags: obs.FlagRA, RTT: 1500 * time.Microsecond,
		Answer: []obs.Record{{Name: domain, Type: dns.TypeA, TTL: 300, Data: addr}},
	}}}
}

// startCoordinator runs a coordinator over store against url until the
// test ends, and returns it once its streams exist.
func startCoordinator(t *testing.T, store *storage.Store, cfg CoordinatorConfig) *Coordinator {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger(t, slog.LevelWarn)
	}
	c, err := NewCoordinator(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// jsClient connects to the test server's JetStream, closed when the test
// ends.
func jsClient(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func publishObservation(t *testing.T, js jetstream.JetStream, p obs.Probe, msgID string) *jetstream.PubAck {
	t.Helper()
	m, id, err := encodeObservation("fluxwatch.obs.test", "test", p)
	if err != nil {
		t.Fatal(err)
	}
	if msgID == "" {
		msgID = id
	}
	m.Header.Set(nats.MsgIdHdr, msgID)
	ack, err := js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

// TestIngestStoresEachObservationOnce publishes observations, then the
// same ones again: with the same Nats-Msg-Id JetStream drops them; with
// another (a resend after the duplicate window) they reach the
// coordinator, and storage keeps one copy. Malformed observations and
// unknown domains are dropped without holding up the rest.
func TestIngestStoresEachObservationOnce(t *testing.T) {
	srv := startNATS(t)
	store := openStore(t, "c.db")
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	if _, err := store.AddDomains([]string{"a.example", "b.example"}, "t", now); err != nil {
		t.Fatal(err)
	}
	stored := &idSet{}
	c := startCoordinator(t, store, CoordinatorConfig{Conn: ConnConfig{URL: srv.ClientURL()}, Now: func() time.Time { return now },
		OnStored: func(ids []string) { stored.add(ids...) }})
	js := jsClient(t, srv.ClientURL())

	probes := []obs.Probe{
		testProbe("a.example", "eu/192.0.2.53:53", now, "198.51.100.1"),
		testProbe("a.example", "eu/192.0.2.54:53", now, "198.51.100.2"),
		testProbe("b.example", "eu/192.0.2.53:53", now.Add(time.Second), "198.51.100.3"),
	}
	for _, p := range probes {
		if ack := publishObservation(t, js, p, ""); ack.Duplicate {
			t.Fatal("first publish taken for a duplicate")
		}
	}
	waitFor(t, 10*time.Second, "three observations stored", func() bool { return c.Stats().Stored == 3 })

	// Same IDs: JetStream drops them.
	for _, p := range probes {
		if ack := publishObservation(t, js, p, ""); !ack.Duplicate {
			t.Error("a resend with the same Nats-Msg-Id was not taken for a duplicate")
		}
	}
	// Other IDs: delivered, stored over themselves.
	for i, p := range probes {
		publishObservation(t, js, p, "after-the-window-"+string(rune('a'+i)))
	}
	// Never storable: not an observation; a domain the store does not know.
	bad := nats.NewMsg("fluxwatch.obs.test")
	bad.Data = []byte(`{"domain":`)
	if _, err := js.PublishMsg(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	publishObservation(t, js, testProbe("unknown.example", "eu/192.0.2.53:53", now, "198.51.100.9"), "")
	waitFor(t, 10*time.Second, "the resends and the bad ones handled", func() bool {
		st := c.Stats()
		return st.Received == 8 && st.Rejected == 2 && st.Stored == 6
	})
	st, err := store.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Probes != 3 {
		t.Errorf("database holds %d probes, want 3 (each stored once)", st.Probes)
	}
	if cs := c.Stats(); cs.Stored != 6 {
		t.Errorf("coordinator stats %+v, want 6 stored (3 twice)", cs)
	}
	// Stored as sent: the history reads back what was published.
	var got []obs.Probe
	store.History("a.example", time.Time{}, time.Time{}, func(p obs.Probe) error { got = append(got, p); return nil })
	if len(got) != 2 || got[0].Vantage != probes[0].Vantage || !got[0].Start.Equal(probes[0].Start) ||
		got[0].Observations[0].Answer[0].Data != "198.51.100.1" || got[0].Observations[0].RTT != 1500*time.Microsecond {
		t.Errorf("history %+v", got)
	}
	// Each domain is due again just past its TTL.
	d, _, _ := store.Domain("a.example")
	if want := now.Add(time.Minute); !d.NextDue.Equal(want.Truncate(time.Millisecond)) && !d.NextDue.Equal(now.Add(301*time.Second).Truncate(time.Millisecond)) {
		t.Errorf("next due %v", d.NextDue)
	}
	// Acknowledged: nothing waits in the stream.
	waitFor(t, 5*time.Second, "the stream to empty", func() bool {
		s, err := js.Stream(t.Context(), "FLUXWATCH_OBS")
		return err == nil && s.CachedInfo().State.Msgs == 0
	})
}

// TestDispatchLeasesDueDomains checks the work a dispatch publishes: one
// item per domain and target, the domains leased so that the next
// dispatch sends nothing, and items whose lease ran out dropped by the
// agent unmeasured.
func TestDispatchLeasesDueDomains(t *testing.T) {
	srv := startNATS(t)
	store := openStore(t, "c.db")
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := newTestClock(start)
	now := clock.Now
	if _, err := store.AddDomains([]string{"a.example", "b.example", "c.example"}, "t", start); err != nil {
		t.Fatal(err)
	}
	c := startCoordinator(t, store, CoordinatorConfig{Conn: ConnConfig{URL: srv.ClientURL()},
		Targets: []string{"region:eu", "agent:tokyo-1"}, Lease: 5 * time.Minute, Now: now})
	st, err := c.Dispatch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Domains != 3 || st.Published != 6 || st.Failed != 0 || st.Round != start.UnixNano() {
		t.Errorf("dispatch %+v", st)
	}
	if st, err := c.Dispatch(t.Context()); err != nil || st.Domains != 0 {
		t.Errorf("second dispatch %+v, %v: leased domains sent again", st, err)
	}
	d, _, _ := store.Domain("b.example")
	if !d.NextDue.Equal(start.Add(5 * time.Minute)) {
		t.Errorf("lease until %v", d.NextDue)
	}

	js := jsClient(t, srv.ClientURL())
	s, err := js.Stream(t.Context(), "FLUXWATCH_WORK")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects["fluxwatch.work.region.eu"]; n != 3 {
		t.Errorf("%d items for region eu, want 3", n)
	}
	if n := info.State.Subjects["fluxwatch.work.agent.tokyo-1"]; n != 3 {
		t.Errorf("%d items for agent tokyo-1, want 3", n)
	}
	m, err := s.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var w Work
	if err := json.Unmarshal(m.Data, &w); err != nil || w.Domain != "a.example" || w.Round != start.UnixNano() || !w.Expires.Equal(start.Add(5*time.Minute)) {
		t.Errorf("work item %s: %+v, %v", m.Data, w, err)
	}

	// After the lease the agent drops its items unmeasured.
	clock.Add(10 * time.Minute)
	log, _ := testLogger(t, slog.LevelWarn)
	a, err := NewAgent(fakeQuerier{}, crawler.Crawler{}, AgentConfig{Conn: ConnConfig{URL: srv.ClientURL()}, Name: "tokyo-1", Region: "jp",
		Vantages: vantagesOf("192.0.2.53:53"), Outbox: t.TempDir() + "/outbox", Now: now, HeartbeatInterval: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, 10*time.Second, "the expired items dropped", func() bool { return a.Heartbeat().WorkExpired == 3 })
	cancel()
	<-done
	if h := a.Heartbeat(); h.WorkDone != 0 || h.Queries != 0 {
		t.Errorf("expired items measured: %+v", h)
	}
}

// A domain is due again just past the smallest address TTL any vantage saw,
// clamped; one no vantage had an address for waits the longest.
func TestNextDueTakesTheSmallestTTL(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := openStore(t, "c.db")
	if _, err := store.AddDomains([]string{"a.example", "b.example", "c.example"}, "t", now); err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{store: store, cfg: CoordinatorConfig{Now: func() time.Time { return now }, MinInterval: 30 * time.Second, MaxInterval: time.Hour}}
	probe := func(domain, vantage string, ttls ...uint32) obs.Probe {
		o := obs.Observation{Name: domain, QType: dns.TypeA}
		for i, ttl := range ttls {
			o.Answer = append(o.Answer, obs.Record{Name: domain, Type: dns.TypeA, TTL: ttl, Data: fmt.Sprintf("192.0.2.%d", i+1)})
		}
		return obs.Probe{Domain: domain, Vantage: vantage, Observations: []obs.Observation{o}}
	}
	due := map[string]time.Time{}
	measured, _, err := c.nextDue([]obs.Probe{
		probe("a.example", "v1", 300), probe("a.example", "v2", 90), // the smaller wins
		probe("b.example", "v1"), probe("b.example", "v2", 120), // one vantage without an address
		probe("c.example", "v1"), // no address at all
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range measured {
		due[d.Domain] = d.At
	}
	for domain, want := range map[string]time.Time{
		"a.example": now.Add(91 * time.Second), "b.example": now.Add(121 * time.Second), "c.example": now.Add(time.Hour),
	} {
		if !due[domain].Equal(want) {
			t.Errorf("%s due %v; want %v", domain, due[domain], want)
		}
	}
}

// A domain no vantage answers goes dark as it does in a local crawl, one
// count per dispatch however many batches bring its observations, and an
// answer clears the count.
func TestCoordinatorCountsDarkDomainsOncePerDispatch(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := openStore(t, "c.db")
	if _, err := store.AddDomains([]string{"gone.example"}, "t", now); err != nil {
		t.Fatal(err)
	}
	cfg := CoordinatorConfig{Now: func() time.Time { return now }, Lease: 10 * time.Minute}
	cfg.setDefaults()
	c := &Coordinator{store: store, cfg: cfg, unheard: map[string]time.Time{}}
	silent := func(vantage string) obs.Probe {
		return obs.Probe{Domain: "gone.example", Vantage: vantage, Observations: []obs.Observation{
			{Name: "gone.example", QType: dns.TypeA, Err: obs.Timeout}}}
	}
	batch := func(ps ...obs.Probe) (int, time.Duration) {
		t.Helper()
		if err := c.measured(ps); err != nil {
			t.Fatal(err)
		}
		d, _, _ := store.Domain("gone.example")
		return d.Dark, d.NextDue.Sub(now)
	}
	for round := 1; round <= 3; round++ {
		c.unheard["gone.example"] = now // dispatched
		if dark, _ := batch(silent("east/v1")); dark != round {
			t.Fatalf("dispatch %d, first batch: dark %d", round, dark)
		}
		// Another region's batch of the same dispatch: counted already.
		if dark, wait := batch(silent("west/v1")); dark != round || (round == 3) != (wait == 2*time.Hour) {
			t.Fatalf("dispatch %d, second batch: dark %d, next in %v", round, dark, wait)
		}
	}
	answer := obs.Probe{Domain: "gone.example", Vantage: "east/v1", Observations: []obs.Observation{{Name: "gone.example", QType: dns.TypeA,
		Answer: []obs.Record{{Name: "gone.example", Type: dns.TypeA, TTL: 60, Data: "192.0.2.1"}}}}}
	c.unheard["gone.example"] = now
	if dark, wait := batch(silent("west/v1"), answer); dark != 0 || wait != 61*time.Second {
		t.Fatalf("after an answer: dark %d, next in %v; want 0 and TTL + 1 s", dark, wait)
	}
}

// flakyStore is a store that fails to look up domains, or to write
// probes, while told to.
type flakyStore struct {
	*storage.Store
	failLookups, failWrites atomic.Bool
	lookupFails, writeFails atomic.Int64
}

var _ CoordinatorStore = (*flakyStore)(nil)

var errFlaky = errors.New("the disk is having a bad moment")

func (f *flakyStore) Domain(name string) (storage.Domain, bool, error) {
	if f.failLookups.Load() {
		f.lookupFails.Add(1)
		return storage.Domain{}, false, errFlaky
	}
	return f.Store.Domain(name)
}

func (f *flakyStore) WriteProbes(ps []obs.Probe) (int, error) {
	if f.failWrites.Load() {
		f.writeFails.Add(1)
		return 0, errFlaky
	}
	return f.Store.WriteProbes(ps)
}

// A store that fails for a while loses nothing: observations whose domain
// could not be looked up, and batches that could not be written, are
// delivered again after the retry delay, and every one is stored once the
// store recovers. Only what can never be stored is terminated.
func TestIngestRetriesWhileTheStoreFails(t *testing.T) {
	srv := startNATS(t)
	store := &flakyStore{Store: openStore(t, "c.db")}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	domains := []string{"a.example", "b.example", "c.example"}
	if _, err := store.AddDomains(domains, "t", now); err != nil {
		t.Fatal(err)
	}
	store.failLookups.Store(true)
	stored := &idSet{}
	log, _ := testLogger(t, slog.LevelWarn)
	c, err := NewCoordinator(store, CoordinatorConfig{Conn: ConnConfig{URL: srv.ClientURL()}, Now: func() time.Time { return now },
		RetryDelay: 50 * time.Millisecond, Logger: log, OnStored: func(ids []string) { stored.add(ids...) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	js := jsClient(t, srv.ClientURL())
	var ids []string
	for i := range 12 {
		p := testProbe(domains[i%3], "eu/192.0.2.53:53", now.Add(time.Duration(i)*time.Second), "198.51.100.1")
		id := fmt.Sprintf("obs-%d", i)
		publishObservation(t, js, p, id)
		ids = append(ids, id)
	}
	// Lookups fail: each observation comes back again and again.
	waitFor(t, 20*time.Second, "lookups to fail repeatedly", func() bool { return store.lookupFails.Load() >= 36 })
	// Lookups work, writes fail: whole batches come back.
	store.failWrites.Store(true)
	store.failLookups.Store(false)
	waitFor(t, 20*time.Second, "writes to fail repeatedly", func() bool { return store.writeFails.Load() >= 3 })
	if st := c.Stats(); st.Stored != 0 || st.Rejected != 0 || st.Retried < 36 {
		t.Fatalf("while the store fails: %+v; want nothing stored, nothing rejected, retries", st)
	}
	// The store recovers: everything is stored.
	store.failWrites.Store(false)
	waitFor(t, 20*time.Second, "every observation stored", func() bool { return stored.len() == len(ids) })
	for _, id := range ids {
		if !stored.has(id) {
			t.Errorf("observation %s was never stored", id)
		}
	}
	st, err := store.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Probes != len(ids) {
		t.Errorf("the database holds %d probes; want %d", st.Probes, len(ids))
	}
	// What can never be stored is still terminated, and counted.
	publishObservation(t, js, testProbe("unknown.example", "eu/192.0.2.53:53", now, "198.51.100.9"), "")
	waitFor(t, 10*time.Second, "the unknown domain rejected", func() bool { return c.Stats().Rejected == 1 })
	waitFor(t, 5*time.Second, "the stream to empty", func() bool {
		s, err := js.Stream(t.Context(), "FLUXWATCH_OBS")
		return err == nil && s.CachedInfo().State.Msgs == 0
	})
}
