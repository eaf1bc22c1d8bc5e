package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/storage"
)

func vantagesOf(addrs ...string) []scheduler.Vantage {
	out := make([]scheduler.Vantage, len(addrs))
	for i, a := range addrs {
		out[i] = scheduler.Vantage{Addr: a}
	}
	return out
}

// runAgent runs an agent until the test ends or the returned function is
// called.
func runAgent(t *testing.T, q crawler.Querier, cfg AgentConfig) (*Agent, func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger(t, slog.LevelWarn)
	}
	a, err := NewAgent(q, crawler.Crawler{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent %s: %v", cfg.Name, err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// TestOutboxResentAfterRestart measures while the observation stream does
// not exist yet (no coordinator has created it): the observations stay in
// the outbox and the work is acknowledged all the same. A new agent on the
// same outbox, once the coordinator is up, sends them, and they are stored.
func TestOutboxResentAfterRestart(t *testing.T) {
	srv := startNATS(t)
	url := srv.ClientURL()
	js := jsClient(t, url)
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Only the work stream, with one item for the agent.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "FLUXWATCH_WORK", Subjects: []string{"fluxwatch.work.>"},
		Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "fluxwatch.work.agent.a1", []byte(`{"domain":"flux.example","round":1}`)); err != nil {
		t.Fatal(err)
	}
	outbox := filepath.Join(t.TempDir(), "a1.outbox")
	cfg := AgentConfig{Conn: ConnConfig{URL: url}, Name: "a1", Vantages: vantagesOf("192.0.2.53:53", "192.0.2.54:53"),
		Outbox: outbox, PublishTimeout: 300 * time.Millisecond, ResendInterval: 100 * time.Millisecond,
		HeartbeatInterval: time.Hour, Now: func() time.Time { return clock }}
	a, stop := runAgent(t, fakeQuerier{}, cfg)
	waitFor(t, 10*time.Second, "the item measured", func() bool { return a.Heartbeat().WorkDone == 1 })
	stop()
	if h := a.Heartbeat(); h.Published != 0 || h.PublishErrors == 0 || h.OutboxPending != 2 {
		t.Errorf("published %d with %d errors, into no stream, and %d left in the outbox (want 2) after the run",
			h.Published, h.PublishErrors, h.OutboxPending)
	}
	box, err := OpenOutbox(outbox, OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	left, _ := box.Pending(0, 10)
	box.Close()
	if len(left) != 2 {
		t.Fatalf("outbox holds %d observations after the stop, want 2", len(left))
	}
	if w, _ := js.Stream(t.Context(), "FLUXWATCH_WORK"); w.CachedInfo().State.Msgs != 0 {
		t.Error("the work item was not acknowledged")
	}

	// The coordinator comes, then a new a1 on the same outbox.
	store := openStore(t, "c.db")
	if _, err := store.AddDomains([]string{"flux.example"}, "t", clock); err != nil {
		t.Fatal(err)
	}
	stored := &idSet{}
	startCoordinator(t, store, CoordinatorConfig{Conn: ConnConfig{URL: url}, OnStored: func(ids []string) { stored.add(ids...) }})
	a2, _ := runAgent(t, fakeQuerier{}, cfg)
	waitFor(t, 10*time.Second, "the outbox sent and stored", func() bool { return stored.len() == 2 })
	for _, e := range left {
		if !stored.has(e.ID) {
			t.Errorf("observation %s from the outbox not stored", e.ID)
		}
	}
	waitFor(t, 5*time.Second, "the outbox to empty", func() bool { return a2.Heartbeat().OutboxPending == 0 })
	var vantages []string
	store.History("flux.example", time.Time{}, time.Time{}, func(p obs.Probe) error {
		vantages = append(vantages, p.Vantage)
		if len(p.Observations) != 3 || p.Observations[0].Answer[0].Data != "192.0.2.1" || !p.Start.Equal(clock) {
			t.Errorf("stored probe %+v", p)
		}
		return nil
	})
	if strings.Join(vantages, " ") != "default/192.0.2.53:53 default/192.0.2.54:53" {
		t.Errorf("vantages stored: %v", vantages)
	}
}

// TestReconnectAfterServerRestart restarts the NATS server (same port,
// same store) under a running coordinator and agent: both reconnect by
// themselves and the work dispatched afterwards is measured and stored.
func TestReconnectAfterServerRestart(t *testing.T) {
	storeDir := t.TempDir()
	srv := startNATS(t, func(o *server.Options) { o.StoreDir = storeDir })
	url := srv.ClientURL()
	port := srv.Addr().(*net.TCPAddr).Port
	store := openStore(t, "c.db")
	clock := newTestClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if _, err := store.AddDomains([]string{"a.example", "b.example"}, "t", clock.Now()); err != nil {
		t.Fatal(err)
	}
	now := clock.Now
	stored := &idSet{}
	conn := ConnConfig{URL: url, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}
	c := startCoordinator(t, store, CoordinatorConfig{Conn: conn, Now: now, OnStored: func(ids []string) { stored.add(ids...) }})
	a, _ := runAgent(t, fakeQuerier{}, AgentConfig{Conn: conn, Name: "a1", Vantages: vantagesOf("192.0.2.53:53"),
		Outbox: filepath.Join(t.TempDir(), "outbox"), HeartbeatInterval: 50 * time.Millisecond, Now: now})
	if _, err := c.DispatchDomains(t.Context(), []string{"a.example"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first item stored", func() bool { return stored.len() == 1 })

	srv.Shutdown()
	srv.WaitForShutdown()
	srv2 := startNATS(t, func(n *server.Options) { n.StoreDir, n.Port = storeDir, port })
	if srv2.ClientURL() != url {
		t.Fatalf("restarted on %s, was %s", srv2.ClientURL(), url)
	}
	clock.Add(time.Second)
	waitFor(t, 15*time.Second, "a dispatch after the restart", func() bool {
		_, err := c.DispatchDomains(t.Context(), []string{"b.example"})
		return err == nil
	})
	waitFor(t, 15*time.Second, "the second item stored", func() bool { return stored.len() == 2 })
	// The heartbeat stream survived the restart: a status command reads
	// the agent's last heartbeat from it.
	loaded, err := ConnectAndLoadAgents(t.Context(), ConnConfig{URL: url}, "", slog.New(slog.DiscardHandler))
	if err != nil || len(loaded) != 1 || loaded[0].Agent != "a1" || loaded[0].Received.IsZero() || loaded[0].Vantages[0] != "192.0.2.53:53" {
		t.Errorf("LoadAgents: %+v, %v", loaded, err)
	}
	before := a.Heartbeat().Time
	clock.Add(time.Second)
	waitFor(t, 10*time.Second, "a heartbeat after the restart", func() bool {
		for _, s := range c.Agents() {
			if s.Agent == "a1" && s.Time.After(before) {
				return true
			}
		}
		return false
	})
}

// TestSecretsStayOutOfLogs runs a coordinator and an agent against a
// server that wants a token, with every log at debug level, once with the
// right token and once with a wrong one; neither token appears in any log.
func TestSecretsStayOutOfLogs(t *testing.T) {
	const token, wrong = "s3cret-token-4711", "wr0ng-token-0815"
	srv := startNATS(t, func(o *server.Options) { o.Authorization = token })
	log, logs := testLogger(t, slog.LevelDebug)
	store := openStore(t, "c.db")
	if _, err := store.AddDomains([]string{"a.example"}, "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	stored := &idSet{}
	host := strings.TrimPrefix(srv.ClientURL(), "nats://")
	c := startCoordinator(t, store, CoordinatorConfig{Conn: ConnConfig{URL: srv.ClientURL(), Token: token}, Logger: log,
		OnStored: func(ids []string) { stored.add(ids...) }})
	// The agent has the token in its URL, the way people paste it.
	runAgent(t, fakeQuerier{}, AgentConfig{Conn: ConnConfig{URL: "nats://" + token + "@" + host}, Name: "a1",
		Vantages: vantagesOf("192.0.2.53:53"), Outbox: filepath.Join(t.TempDir(), "o"), Logger: log, HeartbeatInterval: 50 * time.Millisecond})
	if _, err := c.Dispatch(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the observation stored", func() bool { return stored.len() == 1 })

	// A wrong token: refused, retried, logged.
	_, stop := runAgent(t, fakeQuerier{}, AgentConfig{Conn: ConnConfig{URL: "nats://" + host, Token: wrong, ReconnectWait: 10 * time.Millisecond},
		Name: "a2", Vantages: vantagesOf("192.0.2.53:53"), Outbox: filepath.Join(t.TempDir(), "o2"), Logger: log})
	waitFor(t, 10*time.Second, "the refusal logged", func() bool { return strings.Contains(logs.String(), "uthorization") })
	stop()
	text := logs.String()
	for _, secret := range []string{token, wrong} {
		if strings.Contains(text, secret) {
			t.Errorf("log shows the secret %q:\n%s", secret, text)
		}
	}
	if !strings.Contains(text, "agent starting") || !strings.Contains(text, "redacted@") {
		t.Errorf("log lacks the agent's start with its redacted server:\n%s", text)
	}
}

func TestConnConfigValidateAndRedact(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    ConnConfig
		want string // substring of the error; "" for none
	}{
		{"zero value", ConnConfig{}, ""},
		{"token", ConnConfig{URL: "tls://nats.example:4222", Token: "t"}, ""},
		{"user and token", ConnConfig{User: "u", Token: "t"}, "give one of user, token"},
		{"password alone", ConnConfig{Password: "p"}, "a password needs a user"},
		{"two passwords", ConnConfig{User: "u", Password: "p", PasswordFile: "f"}, "not both"},
		{"cert without key", ConnConfig{TLSCert: "c.pem"}, "needs its key"},
		{"bad URL", ConnConfig{URL: "nats://user:pa ss@%zz"}, "not a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "pa ss") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	c := ConnConfig{URL: "nats://alice:hunter2@a.example:4222, nats://tok3n@b.example"}
	if got, want := c.Redacted(), "nats://redacted@a.example:4222,nats://redacted@b.example"; got != want {
		t.Errorf("Redacted() = %q, want %q", got, want)
	}
	if got := (ConnConfig{}).Redacted(); got != nats.DefaultURL {
		t.Errorf("default URL %q", got)
	}
}

// deadVantage answers through every vantage but dead, which never answers
// anything, the canary included.
type deadVantage struct{ dead string }

func (d deadVantage) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	if vantage == d.dead {
		return nil, 0, &net.OpError{Op: "read", Net: "udp", Err: timeoutError{}}
	}
	return fakeQuerier{}.Query(ctx, vantage, name, qtype)
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// An agent judges its vantages as a local crawl does: one that stops
// answering rests after its canary fails, its domains are skipped rather
// than measured into timeouts (so they stay due: the coordinator's lease
// runs out and they are dispatched again), and the heartbeat, which
// `status` prints, shows the vantage's health.
func TestAgentRestsADeadVantage(t *testing.T) {
	url, clock, store, domains := seededServer(t, 60)
	stored := &idSet{}
	const lease = 5 * time.Minute
	c := startCoordinator(t, store, CoordinatorConfig{Conn: ConnConfig{URL: url}, Lease: lease, MaxInterval: time.Hour,
		Now: clock.Now, OnStored: func(ids []string) { stored.add(ids...) }})
	const dead = "192.0.2.99:53"
	a, _ := runAgent(t, deadVantage{dead: dead}, AgentConfig{Conn: ConnConfig{URL: url}, Name: "a1",
		Vantages: vantagesOf(dead), InFlight: 4, Outbox: filepath.Join(t.TempDir(), "a1.outbox"),
		HeartbeatInterval: 50 * time.Millisecond, Now: clock.Now})
	if _, err := c.Dispatch(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every item handled", func() bool { return a.Heartbeat().WorkDone == int64(len(domains)) })
	h := a.Heartbeat().VantageHealth[dead]
	if h.Healthy || h.Canaries == 0 || h.Skipped == 0 || h.Probes+h.Skipped != int64(len(domains)) {
		t.Fatalf("dead vantage's health %+v after %d domains", h, len(domains))
	}
	// What the coordinator knows of the agent, as status prints it.
	waitFor(t, 10*time.Second, "the heartbeat to reach the coordinator", func() bool {
		for _, s := range c.Agents() {
			if v, ok := s.VantageHealth[dead]; ok && !v.Healthy && v.Skipped == h.Skipped {
				return true
			}
		}
		return false
	})
	// The probes that went out before the vantage rested were stored; the
	// skipped domains have nothing stored and are due when the lease ends.
	waitFor(t, 10*time.Second, "the probes stored", func() bool { return stored.len() == int(h.Probes) })
	// Skipped vantages sent nothing (no empty probe for the coordinator to
	// reject), and each measured domain went dark once for its dispatch.
	waitFor(t, 5*time.Second, "the agent's probe count", func() bool { return a.Heartbeat().Probes == h.Probes })
	if st := c.Stats(); st.Rejected != 0 {
		t.Fatalf("coordinator rejected %d messages: the skipped vantages sent something", st.Rejected)
	}
	dark := 0
	for _, d := range domains {
		if rec, _, _ := store.Domain(d); rec.Dark == 1 {
			dark++
		}
	}
	if dark != int(h.Probes) {
		t.Fatalf("%d domains dark once; want the %d measured", dark, h.Probes)
	}
	clock.Add(lease)
	due, err := store.Due(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != int(h.Skipped) {
		t.Fatalf("%d domains due when the lease ended; want the %d skipped", len(due), h.Skipped)
	}
}

// An agent with one slot takes the region's items one after another: its
// own consumer, which has nothing, must not hold that slot while it waits.
func TestAgentWithOneSlotKeepsWorking(t *testing.T) {
	url, clock, store, domains := seededServer(t, 40)
	c := startCoordinator(t, store, CoordinatorConfig{Conn: ConnConfig{URL: url}, Now: clock.Now})
	a, _ := runAgent(t, fakeQuerier{}, AgentConfig{Conn: ConnConfig{URL: url}, Name: "a1",
		Vantages: vantagesOf("192.0.2.53:53"), InFlight: 1, Outbox: filepath.Join(t.TempDir(), "a1.outbox"), Now: clock.Now})
	if _, err := c.Dispatch(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Each item takes microseconds: 40 of them in 10 s is slow; the
	// starved agent managed about one per fetch wait (2 s).
	waitFor(t, 10*time.Second, "every item handled", func() bool { return a.Heartbeat().WorkDone == int64(len(domains)) })
}

// seededServer starts a NATS server and opens a coordinator's store
// holding n domains, on a test clock.
func seededServer(t *testing.T, n int) (url string, clock *testClock, store *storage.Store, domains []string) {
	t.Helper()
	url = startNATS(t).ClientURL()
	clock = newTestClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	store = openStore(t, "c.db")
	for i := range n {
		domains = append(domains, fmt.Sprintf("d%02d.example", i))
	}
	if _, err := store.AddDomains(domains, "t", clock.Now()); err != nil {
		t.Fatal(err)
	}
	return url, clock, store, domains
}
