//go:build !linux

package crawler

import (
	"net"
	"net/netip"
)

// sockaddr is a server's address as the socket takes it.
type sockaddr struct{ addr netip.AddrPort }

func makeSockaddr(ap netip.AddrPort) (sockaddr, error) { return sockaddr{ap}, nil }

// batchConn moves one datagram per system call where sendmmsg(2) and
// recvmmsg(2) are missing.
type batchConn struct {
	conn *net.UDPConn
	buf  []byte
}

func newBatchConn(conn *net.UDPConn, bufSize int) (*batchConn, error) {
	return &batchConn{conn: conn, buf: make([]byte, bufSize)}, nil
}

func (c *batchConn) readBatch(deliver func(pkt []byte, from netip.AddrPort, truncated bool)) error {
	n, from, err := c.conn.ReadFromUDPAddrPort(c.buf)
	if err != nil {
		return err
	}
	// A datagram that filled the buffer may have been cut.
	deliver(c.buf[:n], from, n == len(c.buf))
	return nil
}

func (c *batchConn) writeBatch(packets []outPacket) (int, error) {
	if _, err := c.conn.WriteToUDPAddrPort(*packets[0].buf, packets[0].srv.sa.addr); err != nil {
		return 0, err
	}
	return 1, nil
}
