package crawler

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/internal/dnstest"
)

// BenchmarkEngine sends A queries through the engine to a loopback server
// (miekg/dns, which is itself the limit here) from 64 goroutines; compare
// with BenchmarkClient, a new socket per query.
func BenchmarkEngine(b *testing.B) {
	e, err := NewEngine(EngineOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	benchQuerier(b, e)
}

func BenchmarkClient(b *testing.B) { benchQuerier(b, NewClient(ClientOptions{})) }

func benchQuerier(b *testing.B, q Querier) {
	addr := benchServer(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan struct{}, 1024)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if _, _, err := q.Query(context.Background(), addr, "bench.test", dns.TypeA); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	start := time.Now()
	for b.Loop() {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

func benchServer(b *testing.B) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	answer := &dns.A{Hdr: dns.RR_Header{Name: "bench.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}
	dnstest.Start(b, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{answer}
		w.WriteMsg(m)
	})})
	return pc.LocalAddr().String()
}
