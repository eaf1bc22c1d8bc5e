package simnet

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	ednsSize = 1232 // the UDP payload size the vantages advertise and send at most
	maxChain = 8    // CNAME hops a vantage follows before giving up
)

// Start generates the world described by cfg and starts its vantage
// resolvers and its registry (the parent-zone server of the TLDs), UDP and
// TCP on one loopback port each. It returns once every server is
// listening. When ctx is done the world closes itself, as if Close were
// called; Close must still be called to wait for the shutdown.
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
		v := &vantage{index: i, w: w, cache: newCache()}
		if v.ep, err = w.serve(ctx, fmt.Sprintf("vantage %d", i), v, cfg.port(1+i)); err != nil {
			w.Close()
			return nil, fmt.Errorf("simnet: starting vantage %d: %w", i, err)
		}
		w.vantages = append(w.vantages, v)
	}
	if w.registry, err = w.serve(ctx, "registry", &registry{w: w}, cfg.port(0)); err != nil {
		w.Close()
		return nil, fmt.Errorf("simnet: starting the registry: %w", err)
	}
	w.mu.Lock()
	w.stop = context.AfterFunc(ctx, func() { w.Close() })
	w.mu.Unlock()
	w.log.Info("simulated world started", "seed", cfg.Seed, "vantages", w.Vantages(), "registry", w.registry.addr,
		"domains", len(domains), "speed", cfg.Speed, "start", cfg.Start)
	return w, nil
}

// vantage is one simulated recursive resolver: a UDP and a TCP server on
// one port, with its own cache and its own view of the rotations.
type vantage struct {
	index   int
	w       *World
	ep      *endpoint
	cache   *cache
	queries atomic.Uint64
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
	m, ok := reply(req)
	m.RecursionAvailable = true
	if ok {
		v.resolve(m, req.Question[0])
	}
	fit(m, req, udp)
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
