package simnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	ednsSize = 1232 // the UDP payload size the vantages advertise and send at most
	maxChain = 8    // CNAME hops a vantage follows before giving up
)

// Start generates the world described by cfg and starts its vantage
// resolvers, UDP and TCP on one loopback port each. It returns once every
// server is listening. When ctx is done the world closes itself, as if
// Close were called; Close must still be called to wait for the shutdown.
func Start(ctx context.Context, cfg Config) (*World, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, domains := generate(cfg)
	w := &World{
		cfg:     cfg,
		log:     cfg.Logger,
		clock:   newClock(cfg.Start, cfg.Speed, time.Now),
		model:   m,
		domains: domains,
		done:    make(chan struct{}),
	}
	for i := range cfg.Vantages {
		if err := w.startVantage(ctx, i); err != nil {
			w.Close()
			return nil, fmt.Errorf("simnet: starting vantage %d: %w", i, err)
		}
	}
	w.mu.Lock()
	w.stop = context.AfterFunc(ctx, func() { w.Close() })
	w.mu.Unlock()
	w.log.Info("simulated world started", "seed", cfg.Seed, "vantages", w.Vantages(),
		"domains", len(domains), "speed", cfg.Speed, "start", cfg.Start)
	return w, nil
}

// vantage is one simulated recursive resolver: a UDP and a TCP server on
// one port, with its own cache and its own view of the rotations.
type vantage struct {
	index   int
	addr    string
	w       *World
	cache   *cache
	queries atomic.Uint64
	servers []*dns.Server
	started atomic.Int32 // servers whose NotifyStartedFunc fired
}

func (w *World) startVantage(ctx context.Context, i int) error {
	pc, l, err := listenPair(ctx, w.cfg.Listen)
	if err != nil {
		return err
	}
	v := &vantage{index: i, addr: pc.LocalAddr().String(), w: w, cache: newCache()}
	w.vantages = append(w.vantages, v) // from here on Close shuts it down
	ready := make(chan struct{}, 2)
	errc := make(chan error, 2)
	for _, s := range []*dns.Server{{PacketConn: pc}, {Listener: l}} {
		s.Handler = v
		s.NotifyStartedFunc = func() {
			v.started.Add(1)
			ready <- struct{}{}
		}
		v.servers = append(v.servers, s)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if err := s.ActivateAndServe(); err != nil {
				w.log.Error("vantage server failed", "vantage", i, "addr", v.addr, "err", err)
				errc <- err
			}
		}()
	}
	for n := 0; n < len(v.servers); {
		select {
		case <-ready:
			n++
		case err := <-errc:
			return fmt.Errorf("serving on %s: %w", v.addr, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// listenPair binds a UDP socket on an ephemeral port of host and a TCP
// listener on the same port, trying again if the TCP port is taken.
func listenPair(ctx context.Context, host string) (net.PacketConn, net.Listener, error) {
	var lc net.ListenConfig
	var lastErr error
	for range 16 {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, fmt.Errorf("binding UDP on %s: %w", host, err)
		}
		port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, port))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("binding TCP on the UDP port: %w", lastErr)
}

// shutdown stops both servers. A server that never started has its socket
// closed instead, which ends its serving goroutine.
func (v *vantage) shutdown(ctx context.Context) error {
	var errs []error
	for _, s := range v.servers {
		if err := s.ShutdownContext(ctx); err != nil {
			if s.PacketConn != nil {
				s.PacketConn.Close()
			}
			if s.Listener != nil {
				s.Listener.Close()
			}
			if v.started.Load() > 0 {
				errs = append(errs, fmt.Errorf("shutting down vantage %s: %w", v.addr, err))
			}
		}
	}
	return errors.Join(errs...)
}

// ServeDNS answers one query as a recursive resolver would.
func (v *vantage) ServeDNS(rw dns.ResponseWriter, req *dns.Msg) {
	v.queries.Add(1)
	resp := v.respond(req, rw.LocalAddr().Network() == "udp")
	if resp.Rcode == dns.RcodeServerFailure && v.w.cfg.ServfailDelay > 0 {
		t := time.NewTimer(v.w.cfg.ServfailDelay)
		select {
		case <-t.C:
		case <-v.w.done:
		}
		t.Stop()
	}
	if err := rw.WriteMsg(resp); err != nil {
		v.w.log.Debug("writing response", "vantage", v.index, "err", err)
	}
}

// respond builds the response to req; udp says whether it must fit the
// client's UDP payload size.
func (v *vantage) respond(req *dns.Msg, udp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	m.Compress = true
	opt := req.IsEdns0()
	if opt != nil {
		m.SetEdns0(ednsSize, false)
	}
	switch {
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
	case req.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
	case len(req.Question) != 1:
		m.Rcode = dns.RcodeFormatError
	case req.Question[0].Qclass != dns.ClassINET,
		req.Question[0].Qtype == dns.TypeAXFR, req.Question[0].Qtype == dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused
	default:
		v.resolve(m, req.Question[0])
	}
	if udp {
		size := dns.MinMsgSize
		if opt != nil {
			size = min(int(opt.UDPSize()), ednsSize)
		}
		m.Truncate(size)
	}
	return m
}

// resolve fills in the answer to q from the cache, following CNAMEs the
// way a recursive resolver does.
func (v *vantage) resolve(m *dns.Msg, q dns.Question) {
	now := v.w.clock.Now()
	qname := dns.CanonicalName(q.Name)
	name := qname
	for range maxChain {
		a := v.cache.get(cacheKey{name, q.Qtype}, now, func() answer {
			return v.w.model.lookup(name, q.Qtype, now, v.index)
		})
		m.Rcode = a.rcode
		m.Answer = append(m.Answer, a.rrs...)
		if target := a.cnameTarget(); target != "" && q.Qtype != dns.TypeCNAME {
			name = target
			continue
		}
		if a.soa != nil {
			m.Ns = append(m.Ns, a.soa)
		}
		// Answer in the case the question was asked in (0x20 randomisation).
		for _, rr := range m.Answer {
			if h := rr.Header(); h.Name == qname {
				h.Name = q.Name
			}
		}
		if v.w.log.Enabled(context.Background(), slog.LevelDebug) {
			v.w.log.Debug("query", "vantage", v.index, "name", q.Name, "type", dns.TypeToString[q.Qtype],
				"rcode", dns.RcodeToString[m.Rcode], "answers", len(m.Answer))
		}
		return
	}
	m.Rcode = dns.RcodeServerFailure
	m.Answer = nil
}
