package crawler

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
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
}

// Engine is a Querier that multiplexes queries over a few long-lived
// unconnected UDP sockets. Responses are matched to queries by source
// address, ID and question; anything else is counted and dropped while the
// query keeps waiting for its real answer. No goroutine is started per
// query: the caller's goroutine waits on a channel and a runtime timer.
// Safe for concurrent use; Close releases the sockets.
type Engine struct {
	opts  EngineOptions
	socks []*socket
	tcp   *tcpPool

	sent, received, retried, unmatched, mismatched, malformed, tcpCount atomic.Uint64

	bufs sync.Pool
}

var _ Querier = (*Engine)(nil)

type socket struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	pending map[pendingKey]*call
}

type pendingKey struct {
	server netip.AddrPort
	id     uint16
}

type call struct {
	name  string // FQDN as sent
	qtype uint16
	done  chan *dns.Msg // buffered 1
	// What arrived for this ID that was not its answer; guarded by the
	// socket's mutex. Reported if the real answer never comes.
	malformed, mismatched bool
}

// NewEngine opens the sockets and starts one reader for each.
func NewEngine(opts EngineOptions) (*Engine, error) {
	c := NewClient(opts.ClientOptions) // fills defaults
	opts.ClientOptions = c.opts
	if opts.Sockets <= 0 {
		opts.Sockets = 16
	}
	if opts.TCPConns <= 0 {
		opts.TCPConns = 2
	}
	e := &Engine{opts: opts, tcp: newTCPPool(opts.TCPConns, opts.Timeout)}
	e.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	for range opts.Sockets {
		conn, err := net.ListenUDP("udp", nil)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("opening query socket: %w", err)
		}
		s := &socket{conn: conn, pending: map[pendingKey]*call{}}
		e.socks = append(e.socks, s)
		go e.read(s)
	}
	return e, nil
}

// Close closes the sockets; queries in flight fail.
func (e *Engine) Close() error {
	var errs []error
	for _, s := range e.socks {
		errs = append(errs, s.conn.Close())
	}
	e.tcp.close()
	return errors.Join(errs...)
}

// Stats returns the counters.
func (e *Engine) Stats() EngineStats {
	return EngineStats{Sent: e.sent.Load(), Received: e.received.Load(), Retried: e.retried.Load(),
		Unmatched: e.unmatched.Load(), Mismatched: e.mismatched.Load(), Malformed: e.malformed.Load(), TCP: e.tcpCount.Load()}
}

// Query implements Querier.
func (e *Engine) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	server, err := netip.ParseAddrPort(vantage)
	if err != nil {
		return nil, 0, fmt.Errorf("resolver %q: %w", vantage, err)
	}
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
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
		r, rtt, err := e.exchange(ctx, server, asked, qtype)
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

// exchange sends one UDP query and waits for its answer or the timeout.
func (e *Engine) exchange(ctx context.Context, server netip.AddrPort, fqdn string, qtype uint16) (*dns.Msg, time.Duration, error) {
	s := e.socks[rand.IntN(len(e.socks))]
	c := &call{name: fqdn, qtype: qtype, done: make(chan *dns.Msg, 1)}
	var id uint16
	s.mu.Lock()
	for {
		id = uint16(rand.Uint32())
		if _, busy := s.pending[pendingKey{server, id}]; !busy {
			break
		}
	}
	k := pendingKey{server, id}
	s.pending[k] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, k)
		s.mu.Unlock()
	}()

	bp := e.bufs.Get().(*[]byte)
	buf, err := packQuery((*bp)[:0], id, fqdn, qtype, !e.opts.NoRecursion, e.opts.UDPSize)
	if err != nil {
		e.bufs.Put(bp)
		return nil, 0, err
	}
	start := time.Now()
	_, err = s.conn.WriteToUDPAddrPort(buf, server)
	*bp = buf
	e.bufs.Put(bp)
	if err != nil {
		return nil, 0, err
	}
	e.sent.Add(1)
	timer := time.NewTimer(e.opts.Timeout)
	defer timer.Stop()
	select {
	case r := <-c.done:
		return r, time.Since(start), nil
	case <-timer.C:
		s.mu.Lock()
		malformed, mismatched := c.malformed, c.mismatched
		s.mu.Unlock()
		switch {
		case malformed:
			return nil, 0, ErrMalformed
		case mismatched:
			return nil, 0, ErrMismatch
		}
		return nil, 0, errTimeout
	case <-ctx.Done():
		return nil, 0, ctx.Err()
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
	buf := make([]byte, 65535)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		e.received.Add(1)
		if n < 12 {
			e.malformed.Add(1)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		k := pendingKey{from, binary.BigEndian.Uint16(buf[:2])}
		s.mu.Lock()
		c := s.pending[k]
		s.mu.Unlock()
		if c == nil {
			e.unmatched.Add(1)
			continue
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			// Garbage with a pending ID: keep waiting for the real answer.
			e.malformed.Add(1)
			s.mu.Lock()
			c.malformed = true
			s.mu.Unlock()
			continue
		}
		if !r.Response || len(r.Question) != 1 || r.Question[0].Qtype != c.qtype ||
			r.Question[0].Qclass != dns.ClassINET || !e.sameName(r.Question[0].Name, c.name) {
			e.mismatched.Add(1)
			s.mu.Lock()
			c.mismatched = true
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		if s.pending[k] == c {
			delete(s.pending, k) // the first matching answer wins
			c.done <- r
		}
		s.mu.Unlock()
	}
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
