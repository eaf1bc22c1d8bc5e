// Package dnstest starts miekg/dns servers on loopback for tests.
package dnstest

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// Start runs srv, which has its PacketConn or Listener set, returns once
// it serves, and shuts it down when the test ends.
func Start(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	errc := make(chan error, 1)
	go func() { errc <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("starting a DNS server: %v", err)
	}
	t.Cleanup(func() { srv.Shutdown() })
}

// Serve answers with h over UDP and TCP on one port of 127.0.0.1 until
// the test ends, and returns the address.
func Serve(t testing.TB, h dns.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	Start(t, &dns.Server{PacketConn: pc, Handler: h})
	Start(t, &dns.Server{Listener: ln, Handler: h})
	return pc.LocalAddr().String()
}
