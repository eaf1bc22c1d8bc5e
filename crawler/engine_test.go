package crawler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// addrOf is the address a test server answers for name: each name its own.
func addrOf(name string) net.IP {
	h := fnv.New32a()
	h.Write([]byte(dns.CanonicalName(name)))
	v := h.Sum32()
	return net.IPv4(10, byte(v>>16), byte(v>>8), byte(v))
}

func answerByName(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: addrOf(q.Name)}}
	w.WriteMsg(m)
}

// Many goroutines share two sockets, so queries leave and answers arrive
// in batches: every query must get its own answer.
func TestEngineBatchesKeepAnswersApart(t *testing.T) {
	addr := serve(t, answerByName)
	e, err := NewEngine(EngineOptions{Sockets: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const workers, each = 64, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("w%d-%d.test", w, i)
				r, _, err := e.Query(context.Background(), addr, name, dns.TypeA)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
				if a, ok := r.Answer[0].(*dns.A); !ok || !a.A.Equal(addrOf(name)) {
					errs <- fmt.Errorf("%s: got the answer %v", name, r.Answer[0])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := e.Stats()
	if st.Sent != workers*each || st.Received != workers*each || st.Unmatched+st.Mismatched+st.Malformed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.SendCalls == 0 || st.SendCalls > st.Sent || st.ReceiveCalls == 0 || st.ReceiveCalls > st.Received {
		t.Fatalf("system calls %+v", st)
	}
	// Where sendmmsg and recvmmsg exist, 64 goroutines on two sockets
	// share system calls.
	if runtime.GOOS == "linux" && (st.SendCalls >= st.Sent || st.ReceiveCalls >= st.Received) {
		t.Fatalf("no batching: %d packets in %d sends, %d in %d reads", st.Sent, st.SendCalls, st.Received, st.ReceiveCalls)
	}
}

func TestEngineIPv6Loopback(t *testing.T) {
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	dnstest.Start(t, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(answerByName)})
	e, err := NewEngine(EngineOptions{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, name := range []string{"a.test", "b.test"} {
		r, _, err := e.Query(context.Background(), pc.LocalAddr().String(), name, dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if a := r.Answer[0].(*dns.A); !a.A.Equal(addrOf(name)) {
			t.Fatalf("%s: %v", name, a)
		}
	}
}

// A datagram longer than the buffer offered for it (the EDNS size) is cut
// by the kernel: it must count as malformed, not be parsed as what is left.
func TestEngineOversizedDatagramIsMalformed(t *testing.T) {
	addr := serveRaw(t, func(q *dns.Msg) []*dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		for i := range 100 { // about 1,600 bytes, with no TC bit
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(10, 0, 0, byte(i))})
		}
		return []*dns.Msg{m}
	})
	e, err := NewEngine(EngineOptions{ClientOptions: ClientOptions{UDPSize: 512, Timeout: 200 * time.Millisecond, Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, _, err := e.Query(context.Background(), addr, "big.test", dns.TypeA); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized datagram: %v; want ErrMalformed", err)
	}
}

// A packet the kernel refuses (UDP port 0 is never valid) fails its own
// query at once; queries sent in the same batch are answered.
func TestEngineSendErrorFailsOnlyItsQuery(t *testing.T) {
	addr := serve(t, answerByName)
	e, err := NewEngine(EngineOptions{Sockets: 1, ClientOptions: ClientOptions{Timeout: 5 * time.Second, Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad, good int
	start := time.Now()
	for i := range 40 {
		wg.Go(func() {
			server := addr
			if i%2 == 0 {
				server = "127.0.0.1:0"
			}
			_, _, err := e.Query(context.Background(), server, fmt.Sprintf("n%d.test", i), dns.TypeA)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case server != addr && err != nil:
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("refused packet timed out instead of failing")
				}
				bad++
			case server == addr && err == nil:
				good++
			default:
				t.Errorf("query to %s: %v", server, err)
			}
		})
	}
	wg.Wait()
	if bad != 20 || good != 20 {
		t.Fatalf("%d refused, %d answered; want 20 and 20", bad, good)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v: refused packets waited for the timeout", d)
	}
}

// Close fails the queries in flight at once rather than leaving them to
// wait for an answer nobody will read.
func TestEngineCloseFailsQueriesInFlight(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	e, err := NewEngine(EngineOptions{Sockets: 1, ClientOptions: ClientOptions{Timeout: 5 * time.Second, Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := e.Query(context.Background(), pc.LocalAddr().String(), "silent.test", dns.TypeA)
		done <- err
	}()
	for e.Stats().Sent == 0 {
		time.Sleep(time.Millisecond)
	}
	e.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("query in flight at Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("query still waiting 2s after Close")
	}
}

// Each query is answered by two datagrams back to back: a stray one (as a
// late answer to an old query would be) and the answer. However they fall
// into the reader's batches, no answer may be left unread on the socket.
func TestEngineReadsEveryQueuedAnswer(t *testing.T) {
	addr := serveRaw(t, func(q *dns.Msg) []*dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
		stray := m.Copy()
		stray.Id++
		return []*dns.Msg{stray, m}
	})
	e, err := NewEngine(EngineOptions{Sockets: 1, ClientOptions: ClientOptions{Timeout: 500 * time.Millisecond, Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range 300 {
		if _, _, err := e.Query(context.Background(), addr, "x.test", dns.TypeA); err != nil {
			t.Fatalf("query %d: %v (answered, but not read)", i, err)
		}
	}
}

// A query whose context ends leaves nothing behind: the channel it waited
// on goes back to the engine for the next query, so a late timeout or
// answer for it must never reach another query. Queries to a silent server
// are cancelled long before their deadline; while that deadline passes,
// other queries wait on the same engine for a slow server, and each must
// get its own answer.
func TestEngineCancelledQueriesLeaveNothingForTheNext(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	slow := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(250 * time.Millisecond)
		answerByName(w, r)
	})
	const timeout = 400 * time.Millisecond
	e, err := NewEngine(EngineOptions{Sockets: 1, ClientOptions: ClientOptions{Timeout: timeout, Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const n = 32
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			if _, _, err := e.Query(ctx, silent.LocalAddr().String(), fmt.Sprintf("gone%d.test", i), dns.TypeA); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("cancelled query: %v", err)
			}
		})
	}
	wg.Wait()
	// The cancelled queries' deadlines pass while these wait.
	time.Sleep(time.Until(start.Add(timeout * 5 / 8)))
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("next%d.test", i)
			r, _, err := e.Query(context.Background(), slow, name, dns.TypeA)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			if a, ok := r.Answer[0].(*dns.A); !ok || !a.A.Equal(addrOf(name)) {
				t.Errorf("%s: got the answer %v", name, r.Answer[0])
			}
		})
	}
	wg.Wait()
}
