package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// echo is a command set for the tests: "cat" copies stdin to stdout,
// "bin" writes every byte value and a large block, "fail" exits 3 with an
// error line, "wait" blocks until its context ends.
// waiting and waited hear when a "wait" command starts and when its
// context has ended.
var waiting, waited = make(chan struct{}, 8), make(chan struct{}, 8)

func echo(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) (int, string) {
	args := req.Args
	switch args[0] {
	case "cat":
		fmt.Fprintln(stderr, "reading")
		if _, err := io.Copy(stdout, stdin); err != nil {
			return 1, err.Error()
		}
		return 0, ""
	case "bin":
		var b []byte
		for i := range 256 {
			b = append(b, byte(i))
		}
		stdout.Write(b)
		stdout.Write(bytes.Repeat([]byte{0xff}, 3*maxFrame+7))
		return 0, ""
	case "dir":
		fmt.Fprint(stdout, req.Dir)
		return 0, ""
	case "fail":
		fmt.Fprintln(stdout, "partial")
		return 3, "it failed: " + strings.Join(args[1:], " ")
	case "wait":
		waiting <- struct{}{}
		<-ctx.Done()
		waited <- struct{}{}
		return 1, ctx.Err().Error()
	}
	return 2, "unknown command " + args[0]
}

func listen(t *testing.T) (string, *Server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.db.sock")
	s, err := Listen(path, Holder{Kind: "daemon", PID: 42, DB: "f.db"}, echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return path, s
}

func TestRunCarriesStreamsAndExitCode(t *testing.T) {
	path, _ := listen(t)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out, errb bytes.Buffer
	in := strings.Repeat("example.com\n", 50000)
	code, msg, err := c.Run(ctx, Request{Args: []string{"cat"}}, strings.NewReader(in), &out, &errb)
	if err != nil || code != 0 || msg != "" {
		t.Fatalf("cat: code %d, %q, %v", code, msg, err)
	}
	if out.String() != in || errb.String() != "reading\n" {
		t.Fatalf("cat: stdout %d bytes (want %d), stderr %q", out.Len(), len(in), errb.String())
	}

	out.Reset()
	if code, _, err := c.Run(ctx, Request{Args: []string{"bin"}}, nil, &out, io.Discard); err != nil || code != 0 {
		t.Fatalf("bin: %d %v", code, err)
	}
	if out.Len() != 256+3*maxFrame+7 || out.Bytes()[0] != 0 || out.Bytes()[255] != 255 || out.Bytes()[256] != 0xff {
		t.Fatalf("bin: %d bytes, not what was written", out.Len())
	}

	out.Reset()
	code, msg, err = c.Run(ctx, Request{Args: []string{"fail", "for", "a reason"}}, nil, &out, io.Discard)
	if err != nil || code != 3 || msg != "it failed: for a reason" || out.String() != "partial\n" {
		t.Fatalf("fail: code %d, %q, %v, stdout %q", code, msg, err, out.String())
	}

	out.Reset()
	if code, _, err := c.Run(ctx, Request{Args: []string{"dir"}, Dir: "/some/where"}, nil, &out, io.Discard); err != nil || code != 0 || out.String() != "/some/where" {
		t.Fatalf("dir: %d %v %q", code, err, out.String())
	}

	h, err := c.Holder(ctx)
	if err != nil || h.Kind != "daemon" || h.PID != 42 || h.DB != "f.db" {
		t.Fatalf("holder: %+v, %v", h, err)
	}
}

func TestSocketIsTheOwnersAlone(t *testing.T) {
	path, _ := listen(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("socket mode %v, want 0600", perm)
	}
}

func TestDialWithoutHolder(t *testing.T) {
	dir := t.TempDir()
	if _, err := Dial(filepath.Join(dir, "none.sock")); !errors.Is(err, ErrNoHolder) {
		t.Fatalf("no socket: %v, want ErrNoHolder", err)
	}
	// A socket file left by a holder that died: nobody answers on it.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := Dial(stale); !errors.Is(err, ErrNoHolder) {
		t.Fatalf("stale socket: %v, want ErrNoHolder", err)
	}
	// A new holder takes its place.
	s, err := Listen(stale, Holder{Kind: "crawl"}, echo, nil)
	if err != nil {
		t.Fatalf("listening over a stale socket: %v", err)
	}
	if _, err := Dial(stale); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there after Close: %v", err)
	}
}

func TestListenRefusesALiveHolderOrAFile(t *testing.T) {
	path, _ := listen(t)
	if _, err := Listen(path, Holder{}, echo, nil); err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Fatalf("second holder: %v", err)
	}
	file := filepath.Join(t.TempDir(), "x.sock")
	os.WriteFile(file, []byte("not a socket"), 0o644)
	if _, err := Listen(file, Holder{}, echo, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "not a socket" {
		t.Fatal("the regular file was changed")
	}
}

func TestCloseCancelsRunningCommands(t *testing.T) {
	path, s := listen(t)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		msg  string
	}
	done := make(chan result)
	go func() {
		code, msg, _ := c.Run(context.Background(), Request{Args: []string{"wait"}}, nil, io.Discard, io.Discard)
		done <- result{code, msg}
	}()
	<-waiting
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not cancel the running command")
	}
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.msg, "canceled") {
			t.Fatalf("running command at close: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the running command did not end at Close")
	}
}

// A client that gives up, with its standard input still open (a
// terminal), returns at once, and the command in the holder is cancelled.
func TestClientCancelReachesTheCommand(t *testing.T) {
	path, _ := listen(t)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	stdin, open := io.Pipe()
	defer open.Close()
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() {
		_, _, err := c.Run(ctx, Request{Args: []string{"wait"}}, stdin, io.Discard, io.Discard)
		returned <- err
	}()
	<-waiting
	cancel()
	select {
	case err := <-returned:
		if err == nil {
			t.Fatal("a cancelled run returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not return after its context ended, standard input open")
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the command in the holder was not cancelled")
	}
}
