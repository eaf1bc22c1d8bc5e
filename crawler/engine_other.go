//go:build !linux

package crawler

import (
	"net"
	"net/netip"
	"strconv"
	"time"
)

// sockaddr is a server's address as the socket takes it.
type sockaddr struct{ addr netip.AddrPort }

func makeSockaddr(ap netip.AddrPort) (sockaddr, error) { return sockaddr{ap}, nil }

// canonicalZone writes an IPv6 zone as its interface name, the form Go
// reports sources in here: "fe80::1%2" and "fe80::1%eth0" are one server.
func canonicalZone(ap netip.AddrPort) (netip.AddrPort, error) {
	zone := ap.Addr().Zone()
	index, err := strconv.Atoi(zone)
	if zone == "" || err != nil {
		return ap, nil
	}
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return ap, err
	}
	return netip.AddrPortFrom(ap.Addr().WithZone(ifi.Name), ap.Port()), nil
}

// batchConn moves one datagram per system call where sendmmsg(2) and
// recvmmsg(2) are missing.
type batchConn struct {
	conn *net.UDPConn
	buf  []byte
}

func newBatchConn(conn *net.UDPConn, bufSize int) (*batchConn, error) {
	return &batchConn{conn: conn, buf: make([]byte, bufSize)}, nil
}

func (c *batchConn) readBatch(deliver func(pkt []byte, from netip.AddrPort, truncated bool, at time.Time)) error {
	n, from, err := c.conn.ReadFromUDPAddrPort(c.buf)
	if err != nil {
		return err
	}
	// A datagram that filled the buffer may have been cut.
	deliver(c.buf[:n], from, n == len(c.buf), time.Now())
	return nil
}

func (c *batchConn) writeBatch(packets []outPacket) (int, error) {
	if _, err := c.conn.WriteToUDPAddrPort(*packets[0].buf, packets[0].srv.sa.addr); err != nil {
		return 0, err
	}
	return 1, nil
}
