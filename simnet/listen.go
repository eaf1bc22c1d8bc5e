package simnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
)

// endpoint is one DNS server of the world: UDP and TCP on one loopback port.
type endpoint struct {
	name    string // for logs: "vantage 2", "registry"
	addr    string // "127.0.0.1:port"
	servers []*dns.Server
	started atomic.Int32 // servers whose NotifyStartedFunc fired
}

// serve binds a UDP socket and a TCP listener on one port of the world's
// listen address, port or else an ephemeral one, and serves h on both. It
// returns once both are listening. The endpoint is registered for Close
// before serve waits, so Close shuts it down even when serve fails.
func (w *World) serve(ctx context.Context, name string, h dns.Handler, port int) (*endpoint, error) {
	pc, l, err := listenPair(ctx, w.cfg.Listen, port)
	if err != nil {
		return nil, err
	}
	ep := &endpoint{name: name, addr: pc.LocalAddr().String()}
	w.servers = append(w.servers, ep) // from here on Close shuts it down
	ready := make(chan struct{}, 2)
	errc := make(chan error, 2)
	for _, s := range []*dns.Server{{PacketConn: pc}, {Listener: l}} {
		s.Handler = h
		s.NotifyStartedFunc = func() {
			ep.started.Add(1)
			ready <- struct{}{}
		}
		ep.servers = append(ep.servers, s)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if err := s.ActivateAndServe(); err != nil {
				w.log.Error("server failed", "server", name, "addr", ep.addr, "err", err)
				errc <- err
			}
		}()
	}
	for n := 0; n < len(ep.servers); {
		select {
		case <-ready:
			n++
		case err := <-errc:
			return nil, fmt.Errorf("serving on %s: %w", ep.addr, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return ep, nil
}

// port returns the port the endpoint listens on.
func (ep *endpoint) port() int {
	_, p, _ := net.SplitHostPort(ep.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// listenPair binds a UDP socket and a TCP listener on port of host or,
// when port is 0, on an ephemeral port, trying again if the TCP port is
// taken.
func listenPair(ctx context.Context, host string, port int) (net.PacketConn, net.Listener, error) {
	var lc net.ListenConfig
	if port != 0 {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("binding UDP on %s: %w", addr, err)
		}
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			pc.Close()
			return nil, nil, fmt.Errorf("binding TCP on %s: %w", addr, err)
		}
		return pc, l, nil
	}
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
func (ep *endpoint) shutdown(ctx context.Context) error {
	var errs []error
	for _, s := range ep.servers {
		if err := s.ShutdownContext(ctx); err != nil {
			if s.PacketConn != nil {
				s.PacketConn.Close()
			}
			if s.Listener != nil {
				s.Listener.Close()
			}
			if ep.started.Load() > 0 {
				errs = append(errs, fmt.Errorf("shutting down %s at %s: %w", ep.name, ep.addr, err))
			}
		}
	}
	return errors.Join(errs...)
}

// reply starts the response to req with the checks every server of the
// world makes: EDNS version, opcode, one question of class IN, no zone
// transfers. ok is false when one fails; m's rcode then says why.
func reply(req *dns.Msg) (m *dns.Msg, ok bool) {
	m = new(dns.Msg)
	m.SetReply(req)
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
		return m, true
	}
	return m, false
}

// fit truncates m, over UDP, to the payload size the client of req takes.
func fit(m, req *dns.Msg, udp bool) {
	if !udp {
		return
	}
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = min(int(opt.UDPSize()), ednsSize)
	}
	m.Truncate(size)
}
