//go:build !linux

package crawler

// msgTrunc: elsewhere the batch reads come without the kernel's flags; a
// datagram longer than the buffer then fails to unpack instead.
const msgTrunc = 0
