package crawler

import "syscall"

// msgTrunc flags a datagram longer than the buffer it was read into.
const msgTrunc = syscall.MSG_TRUNC
