package cluster

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
	"github.com/fluxwatch/fluxwatch/storage"
)

// startNATS starts an in-process NATS server with JetStream on a random
// loopback port, its store in a temporary directory; it is shut down when
// the test ends. edit, if given, adjusts the options first.
func startNATS(t testing.TB, edit ...func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	for _, e := range edit {
		e(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server did not start")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// openStore opens a database in a temporary directory, closed (after a
// consistency check) when the test ends.
func openStore(t testing.TB, name string) *storage.Store {
	t.Helper()
	s, err := storage.Open(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("database check: %v", err)
		}
		s.Close()
	})
	return s
}

// logBuffer collects log lines; the test prints them if it fails, and
// goroutines that log after the test ended do not panic.
type logBuffer = dnstest.Output

// testLogger logs at level into a buffer that is printed when the test
// fails.
func testLogger(t testing.TB, level slog.Level) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: level})), lb
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testClock is a settable clock that many goroutines read.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *testClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// idSet is a set of observation IDs filled from many goroutines.
type idSet struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *idSet) add(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]int{}
	}
	for _, id := range ids {
		s.ids[id]++
	}
}

func (s *idSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

func (s *idSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}

func (s *idSet) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.ids))
	for k, v := range s.ids {
		out[k] = v
	}
	return out
}

// A secret file is a small regular file: a device is refused rather than
// read for ever, and the final newline is not part of the secret.
func TestReadSecret(t *testing.T) {
	if _, err := readSecret("/dev/zero"); err == nil {
		t.Error("/dev/zero read as a secret")
	}
	path := filepath.Join(t.TempDir(), "token")
	os.WriteFile(path, []byte("s3cret\n"), 0o600)
	if s, err := readSecret(path); err != nil || s != "s3cret" {
		t.Errorf("readSecret = %q, %v; want s3cret", s, err)
	}
	os.WriteFile(path, []byte("\n"), 0o600)
	if _, err := readSecret(path); err == nil {
		t.Error("an empty secret file was accepted")
	}
}
