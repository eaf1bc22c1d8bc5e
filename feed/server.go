package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DefaultDNSAddr is where a Server listens when Options.Addr is empty.
const DefaultDNSAddr = "127.0.0.1:5300"

// DefaultVersions is how many versions a Server keeps for IXFR when
// Options.Versions is zero.
const DefaultVersions = 16

// Options configure a Server. The zero value of every field but Zone and
// Keys is a working default.
type Options struct {
	// Zone is the origin of the served zone, e.g. "fluxwatch.rpz".
	Zone string
	// Addr is the UDP and TCP address to listen on (DefaultDNSAddr when
	// empty; port 0 picks a free port, see Server.Addr).
	Addr string
	// Keys are the TSIG keys a transfer may be signed with. Without a
	// valid signature by one of them a transfer is refused.
	Keys []Key
	// Versions is how many versions are kept as differences for IXFR
	// (DefaultVersions when 0; negative keeps none, so every IXFR gets
	// the full zone).
	Versions int
	// Notify lists the secondaries told of every new version.
	Notify []Secondary
	// NotifyTimeout is how long one NOTIFY waits for its answer (2s when 0).
	NotifyTimeout time.Duration
	// NotifyRetries is how many times an unanswered NOTIFY is sent again,
	// waiting NotifyTimeout, 2×, 4×… in between (3 when 0, none when negative).
	NotifyRetries int
	// Logger receives refusals, transfers and NOTIFY failures (slog.Default when nil).
	Logger *slog.Logger
}

// Secondary is a server told of new versions by NOTIFY.
type Secondary struct {
	// Addr is HOST:PORT.
	Addr string
	// Key names the TSIG key (one of Options.Keys) the NOTIFY is signed
	// with; empty sends it unsigned.
	Key string
}

// Stats counts what a Server did. Every count only grows.
type Stats struct {
	Serial          uint32 // of the version served; 0 before the first Publish
	Versions        int    // differences kept for IXFR
	SOAQueries      uint64
	AXFR            uint64 // full transfers answered to AXFR requests
	IXFRIncremental uint64 // IXFR answered with differences
	IXFRFull        uint64 // IXFR answered with the whole zone (serial unknown or too old)
	IXFRUpToDate    uint64 // IXFR answered with the SOA alone (client up to date, or asking over UDP)
	Refused         uint64 // queries refused: unsigned transfers, other names and types
	BadTSIG         uint64 // requests whose TSIG did not verify (answered NOTAUTH)
	NotifySent      uint64 // NOTIFY messages sent, retries included
	NotifyAcked     uint64 // NOTIFY answered with NOERROR
	NotifyFailed    uint64 // secondaries that never acknowledged a version's NOTIFY
}

type counters struct {
	soa, axfr, ixfrInc, ixfrFull, ixfrUpToDate, refused, badTSIG, notifySent, notifyAcked, notifyFailed atomic.Uint64
}

// Server serves one zone by AXFR and IXFR to TSIG-authenticated
// secondaries and tells them of new versions by NOTIFY. It is safe for
// concurrent use; Publish may be called while transfers run, and each
// transfer sends the version current when it started.
type Server struct {
	opts  Options
	zone  string // canonical
	keys  keyring
	log   *slog.Logger
	cur   atomic.Pointer[version]
	count counters

	pubMu sync.Mutex // serialises Publish

	mu         sync.Mutex // guards the fields below
	udp, tcp   *dns.Server
	addr       string
	closed     bool
	cancelNote context.CancelFunc // stops the NOTIFY round in progress
	notes      sync.WaitGroup
}

// NewServer checks opts and returns a Server that does not listen yet.
func NewServer(opts Options) (*Server, error) {
	if _, ok := dns.IsDomainName(opts.Zone); !ok || opts.Zone == "" {
		return nil, fmt.Errorf("feed: zone %q is not a domain name", opts.Zone)
	}
	kr, err := newKeyring(opts.Keys)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	for _, s := range opts.Notify {
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			return nil, fmt.Errorf("feed: notify address %q: %w", s.Addr, err)
		}
		if _, ok := kr.key(s.Key); s.Key != "" && !ok {
			return nil, fmt.Errorf("feed: notify %s: no key named %q", s.Addr, s.Key)
		}
	}
	if opts.Addr == "" {
		opts.Addr = DefaultDNSAddr
	}
	if opts.Versions == 0 {
		opts.Versions = DefaultVersions
	}
	if opts.NotifyTimeout <= 0 {
		opts.NotifyTimeout = 2 * time.Second
	}
	if opts.NotifyRetries == 0 {
		opts.NotifyRetries = 3
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{opts: opts, zone: dns.CanonicalName(opts.Zone), keys: kr, log: log}, nil
}

// Start listens on Options.Addr over UDP and TCP (the same port) and
// serves in the background until Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.udp != nil {
		return errors.New("feed: server already started or closed")
	}
	pc, ln, err := listenBoth(s.opts.Addr)
	if err != nil {
		return fmt.Errorf("feed: listening on %s: %w", s.opts.Addr, err)
	}
	s.addr = pc.LocalAddr().String()
	var started sync.WaitGroup
	started.Add(2)
	mk := func() *dns.Server {
		return &dns.Server{Handler: s, TsigProvider: s.keys, NotifyStartedFunc: started.Done}
	}
	s.udp, s.tcp = mk(), mk()
	s.udp.PacketConn, s.tcp.Listener = pc, ln
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				s.log.Error("feed: DNS server stopped", "addr", s.addr, "err", err)
			}
		}()
	}
	started.Wait()
	s.log.Info("feed: serving zone", "zone", s.zone, "addr", s.addr, "keys", len(s.keys))
	return nil
}

// listenBoth opens UDP and TCP on the same address; with port 0 it tries a
// few free UDP ports until TCP gets the same one.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			break
		}
	}
	return nil, nil, lastErr
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops listening, cancels NOTIFY retries and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.cancelNote != nil {
		s.cancelNote()
	}
	udp, tcp := s.udp, s.tcp
	s.mu.Unlock()
	var errs []error
	for _, srv := range []*dns.Server{udp, tcp} {
		if srv != nil {
			errs = append(errs, srv.Shutdown())
		}
	}
	s.notes.Wait()
	return errors.Join(errs...)
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	st := Stats{
		SOAQueries: s.count.soa.Load(), AXFR: s.count.axfr.Load(), IXFRIncremental: s.count.ixfrInc.Load(),
		IXFRFull: s.count.ixfrFull.Load(), IXFRUpToDate: s.count.ixfrUpToDate.Load(), Refused: s.count.refused.Load(),
		BadTSIG: s.count.badTSIG.Load(), NotifySent: s.count.notifySent.Load(), NotifyAcked: s.count.notifyAcked.Load(),
		NotifyFailed: s.count.notifyFailed.Load(),
	}
	if v := s.cur.Load(); v != nil {
		st.Serial, st.Versions = v.serial(), len(v.diffs)
	}
	return st
}

// Publish makes rrs, a complete zone with its SOA, the version served,
// and notifies the secondaries. Its serial must come after the one served
// (RFC 1982); publishing the served version again changes nothing. On an
// error the served version stays. Before Start it only sets the version
// Start serves, notifying no one: a restarted server that publishes the
// version its secondaries hold before it starts, and the new one after,
// answers their IXFR with the differences.
func (s *Server) Publish(rrs []dns.RR) error {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	prev := s.cur.Load()
	v, err := newVersion(s.zone, rrs, prev, max(s.opts.Versions, 0))
	if err != nil || v == nil {
		return err
	}
	s.cur.Store(v)
	attrs := []any{"zone", s.zone, "serial", v.serial(), "records", len(v.rrs)}
	if n := len(v.diffs); n > 0 {
		d := v.diffs[n-1]
		attrs = append(attrs, "added", len(d.added), "deleted", len(d.deleted))
	}
	s.log.Info("feed: published", attrs...)
	s.notifyAll(v.soa)
	return nil
}

// PublishFile publishes the zone file at path (as the rpz export writes it).
func (s *Server) PublishFile(path string) error {
	rrs, err := ReadZoneFile(path, s.zone)
	if err != nil {
		return err
	}
	if err := s.Publish(rrs); err != nil {
		return fmt.Errorf("publishing %s: %w", path, err)
	}
	return nil
}
