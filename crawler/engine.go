package crawler

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// EngineOptions configure an Engine. The zero value is usable.
type EngineOptions struct {
	ClientOptions
	// Sockets is the number of long-lived UDP sockets (default 16). Each
	// query goes out through one chosen at random, so its source port is
	// one of this many, and its ID is random.
	Sockets int
	// TCPConns is the number of pooled TCP connections kept per server
	// for truncated answers (default 2).
	TCPConns int
	// RandomizeCase mixes the case of the letters of every UDP question
	// at random (0x20 encoding) and accepts only answers that echo it
	// exactly: a forger must guess one more bit per letter.
	RandomizeCase bool
}

// EngineStats count what an Engine saw.
type EngineStats struct {
	Sent, Received, Retried uint64
	// Unmatched responses answered no pending query (a late answer to a
	// query that timed out, or a forgery); Mismatched ones had a pending
	// query's ID but another question. Both are dropped.
	Unmatched, Mismatched, Malformed uint64
	TCP                              uint64
	// SendCalls and ReceiveCalls count the system calls that carried the
	// UDP queries and responses: each carries a batch of packets.
	SendCalls, ReceiveCalls uint64
}

// Engine is a Querier that multiplexes queries over a few long-lived
// unconnected UDP sockets. Queries waiting on a socket leave together in
// one sendmmsg call, and responses are read up to batchSize at a time with
// recvmmsg. Responses are matched to queries by source address, ID and
// question; anything else is counted and dropped while the query keeps
// waiting for its real answer. No goroutine or timer is started per query:
// the caller's goroutine waits on a channel, and one sweeper fails the
// queries past their deadline, checking every sixteenth of the timeout
// but at least every 100 ms (so a query times out after Timeout plus at
// most that). Safe for concurrent use; Close releases the sockets.
type Engine struct {
	opts EngineOptions
	v4   []*socket
	tcp  *tcpPool

	v6once sync.Once
	v6     []*socket
	v6err  error

	sent, received, retried, unmatched, mismatched, malformed, tcpCount atomic.Uint64
	sendCalls, recvCalls                                                atomic.Uint64

	bufs    sync.Pool
	waiters sync.Pool // of chan result (cap 1), empty: a call's done
	servers sync.Map  // vantage string -> *server

	mu     sync.Mutex // guards all and closed
	all    []*socket  // every socket opened, for the sweeper
	closed bool
	stop   chan struct{} // closed by Close: stops the sweeper
}

var _ Querier = (*Engine)(nil)

// batchSize is the most packets one system call sends or receives.
const batchSize = 64

type socket struct {
	conn  *net.UDPConn
	batch *batchConn // see engine_linux.go

	mu      sync.Mutex
	pending map[pendingKey]*call

	// The send queue: the first goroutine to queue a packet while nobody
	// is sending becomes the sender and sends until the queue is empty, so
	// packets queued meanwhile leave in one system call.
	sendMu  sync.Mutex
	queue   []outPacket
	spare   []outPacket
	sending bool
}

type outPacket struct {
	buf  *[]byte
	srv  *server
	key  pendingKey
	call *call
}

type pendingKey struct {
	server netip.AddrPort
	id     uint16
}

type call struct {
	name     string // FQDN as sent
	qtype    uint16
	deadline time.Time
	sent     time.Time   // when its packet left; guarded by the socket's mutex
	done     chan result // buffered 1; from Engine.waiters
	// What arrived for this ID that was not its answer; guarded by the
	// socket's mutex. Reported if the real answer never comes.
	malformed, mismatched bool
}

type result struct {
	msg *dns.Msg
	rtt time.Duration // from the packet's leaving to the answer's reading
	err error
}

// NewEngine opens the IPv4 sockets and starts one reader for each; IPv6
// sockets are opened with the first IPv6 server asked.
func NewEngine(opts EngineOptions) (*Engine, error) {
	c := NewClient(opts.ClientOptions) // fills defaults
	opts.ClientOptions = c.opts
	if opts.Sockets <= 0 {
		opts.Sockets = 16
	}
	if opts.TCPConns <= 0 {
		opts.TCPConns = 2
	}
	e := &Engine{opts: opts, tcp: newTCPPool(opts.TCPConns, opts.Timeout), stop: make(chan struct{})}
	e.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	e.waiters.New = func() any { return make(chan result, 1) }
	socks, err := e.open("udp4")
	if err != nil {
		return nil, err
	}
	e.v4 = socks
	go e.sweep(min(max(opts.Timeout/16, time.Millisecond), 100*time.Millisecond))
	return e, nil
}

// open opens the sockets of one address family and starts their readers.
func (e *Engine) open(network string) ([]*socket, error) {
	var socks []*socket
	for range e.opts.Sockets {
		conn, err := net.ListenUDP(network, nil)
		if err != nil {
			for _, s := range socks {
				s.conn.Close()
			}
			return nil, fmt.Errorf("opening query socket: %w", err)
		}
		batch, err := newBatchConn(conn, max(int(e.opts.UDPSize), 512)+1) // one more: a longer datagram shows as cut
		if err != nil {
			conn.Close()
			for _, s := range socks {
				s.conn.Close()
			}
			return nil, fmt.Errorf("opening query socket: %w", err)
		}
		s := &socket{conn: conn, batch: batch, pending: map[pendingKey]*call{}}
		socks = append(socks, s)
	}
	e.mu.Lock()
	e.all = append(e.all, socks...)
	e.mu.Unlock()
	for _, s := range socks {
		go e.read(s)
	}
	return socks, nil
}

// sockets returns the sockets that reach server's address family.
func (e *Engine) sockets(server netip.AddrPort) ([]*socket, error) {
	if server.Addr().Is4() {
		return e.v4, nil
	}
	e.v6once.Do(func() {
		e.mu.Lock()
		closed := e.closed
		e.mu.Unlock()
		if closed {
			e.v6err = net.ErrClosed
			return
		}
		e.v6, e.v6err = e.open("udp6")
	})
	return e.v6, e.v6err
}

// Close closes the sockets; queries in flight fail with net.ErrClosed.
func (e *Engine) Close() error {
	e.v6once.Do(func() {}) // no IPv6 sockets from now on
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	close(e.stop)
	var errs []error
	for _, s := range e.all {
		errs = append(errs, s.conn.Close())
		s.mu.Lock()
		for k, c := range s.pending { // nobody else will answer them now
			delete(s.pending, k)
			c.done <- result{err: net.ErrClosed}
		}
		s.mu.Unlock()
	}
	e.tcp.close()
	return errors.Join(errs...)
}

// Stats returns the counters.
func (e *Engine) Stats() EngineStats {
	return EngineStats{Sent: e.sent.Load(), Received: e.received.Load(), Retried: e.retried.Load(),
		Unmatched: e.unmatched.Load(), Mismatched: e.mismatched.Load(), Malformed: e.malformed.Load(), TCP: e.tcpCount.Load(),
		SendCalls: e.sendCalls.Load(), ReceiveCalls: e.recvCalls.Load()}
}

// Query implements Querier.
func (e *Engine) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	srv, err := e.server(vantage)
	if err != nil {
		return nil, 0, err
	}
	server := srv.addr
	socks, err := e.sockets(server)
	if err != nil {
		return nil, 0, err
	}
	fqdn := dns.Fqdn(name)
	var lastErr error
	for attempt := 0; attempt <= e.opts.Retries; attempt++ {
		if attempt > 0 {
			e.retried.Add(1)
		}
		asked := fqdn
		if e.opts.RandomizeCase {
			asked = randomCase(fqdn)
		}
		r, rtt, err := e.exchange(ctx, socks, srv, asked, qtype)
		if err == nil && r.Truncated {
			e.tcpCount.Add(1)
			r, rtt, err = e.tcp.exchange(ctx, server, fqdn, qtype, e.opts)
		}
		if err == nil {
			return r, rtt, nil
		}
		lastErr = err
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	return nil, 0, lastErr
}

// server is a vantage's address, parsed once.
type server struct {
	addr netip.AddrPort
	sa   sockaddr // as the socket takes it
}

func (e *Engine) server(vantage string) (*server, error) {
	if s, ok := e.servers.Load(vantage); ok {
		return s.(*server), nil
	}
	ap, err := netip.ParseAddrPort(vantage)
	if err != nil {
		return nil, fmt.Errorf("resolver %q: %w", vantage, err)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if ap, err = canonicalZone(ap); err != nil {
		return nil, fmt.Errorf("resolver %q: %w", vantage, err)
	}
	sa, err := makeSockaddr(ap)
	if err != nil {
		return nil, fmt.Errorf("resolver %q: %w", vantage, err)
	}
	s, _ := e.servers.LoadOrStore(vantage, &server{addr: ap, sa: sa})
	return s.(*server), nil
}

// exchange sends one UDP query and waits for its answer or the timeout.
func (e *Engine) exchange(ctx context.Context, socks []*socket, srv *server, fqdn string, qtype uint16) (*dns.Msg, time.Duration, error) {
	s := socks[rand.IntN(len(socks))]
	bp := e.bufs.Get().(*[]byte)
	// A call is never reused: a packet still queued, or an answer being
	// read, may refer to it after its query has ended.
	c := &call{name: fqdn, qtype: qtype, deadline: time.Now().Add(e.opts.Timeout), done: e.waiters.Get().(chan result)}
	var id uint16
	s.mu.Lock()
	for tries := 0; ; tries++ {
		id = uint16(rand.Uint32())
		if _, busy := s.pending[pendingKey{srv.addr, id}]; !busy {
			break
		}
		if tries == 1<<16 {
			s.mu.Unlock()
			e.bufs.Put(bp)
			return nil, 0, fmt.Errorf("%s: no free query ID on the socket", srv.addr)
		}
	}
	buf, err := packQuery((*bp)[:0], id, fqdn, qtype, !e.opts.NoRecursion, e.opts.UDPSize)
	if err != nil {
		s.mu.Unlock()
		e.bufs.Put(bp)
		return nil, 0, err
	}
	*bp = buf
	k := pendingKey{srv.addr, id}
	s.pending[k] = c
	s.mu.Unlock()

	e.send(s, outPacket{buf: bp, srv: srv, key: k, call: c})
	// Whoever takes c out of pending (the reader with its answer, the
	// sender with an error, the sweeper at the deadline) sends on c.done.
	var res result
	done := ctx.Done()
	if done == nil { // a context that never ends: wait on c alone
		res = <-c.done
	} else {
		select {
		case res = <-c.done:
		case <-done:
			s.mu.Lock()
			if s.pending[k] == c {
				delete(s.pending, k)
				res.err = ctx.Err()
			} else {
				res = <-c.done // it came just now
			}
			s.mu.Unlock()
		}
	}
	// c.done is empty now, and c is out of pending, so nobody sends on
	// it again: the next query may wait on it.
	e.waiters.Put(c.done)
	if res.err != nil {
		return nil, 0, res.err
	}
	return res.msg, res.rtt, nil
}

// sweep fails the queries past their deadline, every tick, until Close.
func (e *Engine) sweep(tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.mu.Lock()
			socks := e.all
			e.mu.Unlock()
			for _, s := range socks {
				s.expire(now)
			}
		}
	}
}

// expire fails s's queries whose deadline is not after now: with what
// arrived for them that was not their answer, if anything, else a timeout.
func (s *socket) expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.pending {
		if c.deadline.After(now) {
			continue
		}
		delete(s.pending, k)
		var err error = errTimeout
		switch {
		case c.malformed:
			err = ErrMalformed
		case c.mismatched:
			err = ErrMismatch
		}
		c.done <- result{err: err}
	}
}

// send queues a packet on s and, unless another goroutine is sending on s
// already, sends everything queued. The new sender first yields once, so
// that the goroutines ready to run (woken by the last batch of answers)
// queue their packets too and one system call carries them all.
func (e *Engine) send(s *socket, p outPacket) {
	s.sendMu.Lock()
	s.queue = append(s.queue, p)
	if s.sending {
		s.sendMu.Unlock()
		return
	}
	s.sending = true
	s.sendMu.Unlock()
	runtime.Gosched()
	s.sendMu.Lock()
	for len(s.queue) > 0 {
		batch := s.queue
		s.queue = s.spare[:0]
		s.sendMu.Unlock()
		e.sendBatch(s, batch)
		s.sendMu.Lock()
		clear(batch)
		s.spare = batch[:0]
	}
	s.sending = false
	s.sendMu.Unlock()
}

// sendBatch sends packets with as few system calls as it can. A packet
// the kernel refuses fails its query at once. Only the sender (see send)
// calls it, so the socket's send headers are its own.
func (e *Engine) sendBatch(s *socket, packets []outPacket) {
	for len(packets) > 0 {
		// Round-trip times run from here, not from the queueing: a
		// goroutine may send others' packets before its own.
		now := time.Now()
		s.mu.Lock()
		for _, p := range packets[:min(len(packets), batchSize)] {
			p.call.sent = now
		}
		s.mu.Unlock()
		sent, err := s.batch.writeBatch(packets)
		e.sendCalls.Add(1)
		e.sent.Add(uint64(sent))
		if err != nil {
			// The first packet not sent is the one refused.
			p := packets[sent]
			s.mu.Lock()
			if s.pending[p.key] == p.call {
				delete(s.pending, p.key)
				p.call.done <- result{err: err}
			}
			s.mu.Unlock()
			sent++
		}
		for _, p := range packets[:sent] {
			e.bufs.Put(p.buf)
		}
		packets = packets[sent:]
	}
}

// errTimeout is a net.Error that says it timed out, like a socket's.
var errTimeout = &net.OpError{Op: "read", Net: "udp", Err: timeoutError{}}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// read delivers the responses arriving on one socket.
func (e *Engine) read(s *socket) {
	deliver := func(pkt []byte, from netip.AddrPort, truncated bool, at time.Time) {
		e.deliver(s, pkt, from, truncated, at)
	}
	for {
		if err := s.batch.readBatch(deliver); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // an error that persists must not spin
			continue
		}
		e.recvCalls.Add(1)
	}
}

// deliver matches one datagram with its pending query.
func (e *Engine) deliver(s *socket, pkt []byte, from netip.AddrPort, truncated bool, at time.Time) {
	e.received.Add(1)
	if len(pkt) < 12 {
		e.malformed.Add(1)
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	k := pendingKey{from, binary.BigEndian.Uint16(pkt[:2])}
	s.mu.Lock()
	c := s.pending[k]
	s.mu.Unlock()
	if c == nil {
		e.unmatched.Add(1)
		return
	}
	name, qtype := c.name, c.qtype // set before c was pending, never changed
	// still says whether c is still waiting; call it with s.mu held.
	still := func() bool { return s.pending[k] == c }
	var r *dns.Msg
	if !truncated {
		if m, ok := unpackAnswer(pkt, name); ok {
			r = m
		} else if m := new(dns.Msg); m.Unpack(pkt) == nil {
			r = m
		}
	}
	if r == nil {
		// Garbage, or longer than the buffer we offered, with a pending
		// ID: keep waiting for the real answer.
		e.malformed.Add(1)
		s.mu.Lock()
		if still() {
			c.malformed = true
		}
		s.mu.Unlock()
		return
	}
	if !r.Response || len(r.Question) != 1 || r.Question[0].Qtype != qtype ||
		r.Question[0].Qclass != dns.ClassINET || !e.sameName(r.Question[0].Name, name) {
		e.mismatched.Add(1)
		s.mu.Lock()
		if still() {
			c.mismatched = true
		}
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	if still() {
		delete(s.pending, k) // the first matching answer wins
		c.done <- result{msg: r, rtt: at.Sub(c.sent)}
	}
	s.mu.Unlock()
}

// sameName compares a response's question name with the one asked: exactly
// when the case was randomised, else regardless of case.
func (e *Engine) sameName(got, asked string) bool {
	if e.opts.RandomizeCase {
		return got == asked
	}
	return strings.EqualFold(got, asked)
}

// randomCase flips the case of each ASCII letter of name at random.
func randomCase(name string) string {
	b := []byte(name)
	bits := rand.Uint64()
	for i, c := range b {
		if i%64 == 0 && i > 0 {
			bits = rand.Uint64()
		}
		if c|0x20 >= 'a' && c|0x20 <= 'z' {
			if bits&1 == 1 {
				b[i] = c ^ 0x20
			}
			bits >>= 1
		}
	}
	return string(b)
}

// packQuery builds a query without allocating a dns.Msg: header, one
// question, and an OPT record when udpSize is set.
func packQuery(buf []byte, id uint16, fqdn string, qtype uint16, rd bool, udpSize uint16) ([]byte, error) {
	var flags uint16
	if rd {
		flags |= 1 << 8
	}
	arcount := uint16(0)
	if udpSize > 0 {
		arcount = 1
	}
	buf = binary.BigEndian.AppendUint16(buf, id)
	buf = binary.BigEndian.AppendUint16(buf, flags)
	buf = binary.BigEndian.AppendUint16(buf, 1) // QDCOUNT
	buf = binary.BigEndian.AppendUint16(buf, 0)
	buf = binary.BigEndian.AppendUint16(buf, 0)
	buf = binary.BigEndian.AppendUint16(buf, arcount)
	start := len(buf)
	buf = append(buf, make([]byte, len(fqdn)+1)...)
	n, err := dns.PackDomainName(fqdn, buf[start:], 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("packing %q: %w", fqdn, err)
	}
	if n > 255 { // PackDomainName does not check: RFC 1035 2.3.4
		return nil, fmt.Errorf("packing %q: %w", fqdn, dns.ErrLongDomain)
	}
	buf = buf[:start+n]
	buf = binary.BigEndian.AppendUint16(buf, qtype)
	buf = binary.BigEndian.AppendUint16(buf, dns.ClassINET)
	if udpSize > 0 {
		// OPT: root owner, type 41, class = UDP size, TTL 0, no data.
		buf = append(buf, 0)
		buf = binary.BigEndian.AppendUint16(buf, dns.TypeOPT)
		buf = binary.BigEndian.AppendUint16(buf, udpSize)
		buf = binary.BigEndian.AppendUint32(buf, 0)
		buf = binary.BigEndian.AppendUint16(buf, 0)
	}
	return buf, nil
}

// tcpPool keeps a few TCP connections per server for truncated answers.
type tcpPool struct {
	size    int
	timeout time.Duration
	mu      sync.Mutex
	idle    map[netip.AddrPort][]*dns.Conn
	closed  bool
}

func newTCPPool(size int, timeout time.Duration) *tcpPool {
	return &tcpPool{size: size, timeout: timeout, idle: map[netip.AddrPort][]*dns.Conn{}}
}

func (p *tcpPool) get(ctx context.Context, server netip.AddrPort) (*dns.Conn, error) {
	p.mu.Lock()
	if cs := p.idle[server]; len(cs) > 0 {
		c := cs[len(cs)-1]
		p.idle[server] = cs[:len(cs)-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	d := net.Dialer{Timeout: p.timeout}
	conn, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		return nil, err
	}
	return &dns.Conn{Conn: conn}, nil
}

func (p *tcpPool) put(server netip.AddrPort, c *dns.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[server]) >= p.size {
		c.Close()
		return
	}
	p.idle[server] = append(p.idle[server], c)
}

func (p *tcpPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, cs := range p.idle {
		for _, c := range cs {
			c.Close()
		}
	}
	clear(p.idle)
}

// exchange asks over a pooled connection; a connection that failed is
// dropped, and a stale pooled one is replaced by a fresh dial once.
func (p *tcpPool) exchange(ctx context.Context, server netip.AddrPort, fqdn string, qtype uint16, opts EngineOptions) (*dns.Msg, time.Duration, error) {
	var lastErr error
	for try := 0; try < 2; try++ {
		c, err := p.get(ctx, server)
		if err != nil {
			return nil, 0, err
		}
		m := new(dns.Msg)
		m.SetQuestion(fqdn, qtype)
		m.Id = uint16(rand.Uint32())
		m.RecursionDesired = !opts.NoRecursion
		if opts.UDPSize > 0 {
			m.SetEdns0(opts.UDPSize, false)
		}
		deadline := time.Now().Add(opts.Timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.SetDeadline(deadline)
		start := time.Now()
		if err = c.WriteMsg(m); err == nil {
			var r *dns.Msg
			if r, err = c.ReadMsg(); err == nil {
				if !matches(m, r) {
					c.Close()
					return nil, 0, ErrMismatch
				}
				p.put(server, c)
				if r.Truncated {
					return nil, 0, ErrTruncated
				}
				return r, time.Since(start), nil
			}
		}
		c.Close()
		lastErr = err
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
	}
	return nil, 0, lastErr
}
