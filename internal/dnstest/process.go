package dnstest

// Helpers for the tests that run real DNS servers from Debian (bind9,
// unbound, pdns-recursor, knot-resolver) on loopback.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// NeedServer returns the path of a server binary, or skips the test when
// it is not installed; with FLUXWATCH_REQUIRE_SERVERS=1 it fails instead,
// so a CI that installed the servers cannot pass by skipping them.
func NeedServer(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} { // root's PATH may lack sbin
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	msg := fmt.Sprintf("%s not installed (Debian package %s; scripts/install-test-deps.sh installs it)", name, pkg)
	if os.Getenv("FLUXWATCH_REQUIRE_SERVERS") == "1" {
		t.Fatal(msg + "; FLUXWATCH_REQUIRE_SERVERS=1 requires it")
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// FreePort returns a port on 127.0.0.1 that was free for both UDP and TCP
// a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port on 127.0.0.1")
	return 0
}

// Output collects a process's output, safely across goroutines.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns what was written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// StartProcess runs a server in the foreground of its own process group,
// in dir, with its output kept for failure reports (FLUXWATCH_SERVER_LOGS=1
// shows it always), and stops it when the test ends: SIGTERM, then SIGKILL
// after five seconds. Pdeathsig kills it should the test binary die first.
func StartProcess(t testing.TB, dir string, name string, args ...string) *Output {
	t.Helper()
	out := &Output{}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	var exited atomic.Bool
	go func() {
		cmd.Wait()
		exited.Store(true)
		close(done)
	}()
	t.Cleanup(func() {
		if !exited.Load() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
		if t.Failed() || os.Getenv("FLUXWATCH_SERVER_LOGS") == "1" {
			t.Logf("%s output:\n%s", filepath.Base(name), tail(out.String(), 60))
		}
	})
	return out
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}
