package crawler

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockaddr is a server's address as sendmmsg(2) takes it.
type sockaddr struct {
	b [unix.SizeofSockaddrInet6]byte
	n uint32
}

func makeSockaddr(ap netip.AddrPort) (sockaddr, error) {
	var sa sockaddr
	binary.BigEndian.PutUint16(sa.b[2:], ap.Port())
	if ap.Addr().Is4() {
		binary.NativeEndian.PutUint16(sa.b[0:], unix.AF_INET)
		a := ap.Addr().As4()
		copy(sa.b[4:], a[:])
		sa.n = unix.SizeofSockaddrInet4
		return sa, nil
	}
	binary.NativeEndian.PutUint16(sa.b[0:], unix.AF_INET6)
	a := ap.Addr().As16()
	copy(sa.b[8:], a[:])
	if zone := ap.Addr().Zone(); zone != "" {
		index, err := zoneIndex(zone)
		if err != nil {
			return sa, err
		}
		binary.NativeEndian.PutUint32(sa.b[24:], index)
	}
	sa.n = unix.SizeofSockaddrInet6
	return sa, nil
}

// zoneIndex is the interface index of an IPv6 zone, given as a number or
// an interface name.
func zoneIndex(zone string) (uint32, error) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("zone %q: %w", zone, err)
	}
	return uint32(ifi.Index), nil
}

// parseSockaddr reads the source of a datagram recvmmsg(2) filled in.
func parseSockaddr(b []byte) (netip.AddrPort, bool) {
	if len(b) < 2 {
		return netip.AddrPort{}, false
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:])), true
	case unix.AF_INET6:
		if len(b) < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		a := netip.AddrFrom16([16]byte(b[8:24]))
		if index := binary.NativeEndian.Uint32(b[24:]); index != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(index), 10)) // as server() writes zones
		}
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[2:])), true
	}
	return netip.AddrPort{}, false
}

// batchConn moves many datagrams per system call: sendmmsg(2) and
// recvmmsg(2) on the socket's descriptor, through Go's poller. Its headers
// and buffers are made once; the reader and the sender (one goroutine each
// at a time) have their own.
type batchConn struct {
	raw syscall.RawConn

	rhdrs  []unix.Mmsghdr
	riovs  []unix.Iovec
	rnames [][unix.SizeofSockaddrInet6]byte
	rbufs  [][]byte

	shdrs []unix.Mmsghdr
	siovs []unix.Iovec
}

func newBatchConn(conn *net.UDPConn, bufSize int) (*batchConn, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &batchConn{raw: raw,
		rhdrs: make([]unix.Mmsghdr, batchSize), riovs: make([]unix.Iovec, batchSize),
		rnames: make([][unix.SizeofSockaddrInet6]byte, batchSize), rbufs: make([][]byte, batchSize),
		shdrs: make([]unix.Mmsghdr, batchSize), siovs: make([]unix.Iovec, batchSize)}
	for i := range c.rhdrs {
		c.rbufs[i] = make([]byte, bufSize)
		c.riovs[i].Base = &c.rbufs[i][0]
		c.riovs[i].SetLen(bufSize)
		h := &c.rhdrs[i].Hdr
		h.Name = &c.rnames[i][0]
		h.Iov = &c.riovs[i]
		h.SetIovlen(1)
	}
	return c, nil
}

// readBatch waits for datagrams, reads up to batchSize of them in one
// recvmmsg, and hands each to deliver with the time they were read (the
// slice is reused afterwards).
func (c *batchConn) readBatch(deliver func(pkt []byte, from netip.AddrPort, truncated bool, at time.Time)) error {
	var n int
	var errno syscall.Errno
	// Always try first: the poller forgets what it saw before this Read,
	// so waiting first could sleep on a datagram already queued.
	err := c.raw.Read(func(fd uintptr) bool {
		for i := range c.rhdrs {
			c.rhdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			c.rhdrs[i].Hdr.Flags = 0
		}
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rhdrs[0])), uintptr(len(c.rhdrs)), 0, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		n, errno = int(r), e
		return true
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	at := time.Now()
	for i := range n {
		h := &c.rhdrs[i]
		from, ok := parseSockaddr(c.rnames[i][:min(int(h.Hdr.Namelen), unix.SizeofSockaddrInet6)])
		if !ok {
			continue
		}
		deliver(c.rbufs[i][:h.Len], from, h.Hdr.Flags&unix.MSG_TRUNC != 0, at)
	}
	return nil
}

// writeBatch sends up to batchSize packets in one sendmmsg and returns how
// many left; an error means packets[0] was refused.
func (c *batchConn) writeBatch(packets []outPacket) (int, error) {
	n := min(len(packets), len(c.shdrs))
	for i, p := range packets[:n] {
		c.siovs[i].Base = &(*p.buf)[0]
		c.siovs[i].SetLen(len(*p.buf))
		h := &c.shdrs[i].Hdr
		h.Name, h.Namelen = &p.srv.sa.b[0], p.srv.sa.n
		h.Iov = &c.siovs[i]
		h.SetIovlen(1)
	}
	var sent int
	var errno syscall.Errno
	err := c.raw.Write(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.shdrs[0])), uintptr(n), 0, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		sent, errno = int(r), e
		return true
	})
	for i := range n { // let the buffers go
		c.siovs[i].Base = nil
		c.shdrs[i].Hdr.Name = nil
	}
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return sent, nil
}

// canonicalZone writes an IPv6 zone as its interface index, the form the
// kernel reports sources in: "fe80::1%eth0" and "fe80::1%2" are one server.
func canonicalZone(ap netip.AddrPort) (netip.AddrPort, error) {
	zone := ap.Addr().Zone()
	if zone == "" {
		return ap, nil
	}
	index, err := zoneIndex(zone)
	if err != nil {
		return ap, err
	}
	return netip.AddrPortFrom(ap.Addr().WithZone(strconv.FormatUint(uint64(index), 10)), ap.Port()), nil
}
