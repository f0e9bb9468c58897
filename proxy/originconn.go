package proxy

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// errStaleConn is originConn's refusal to write on a connection the origin
// has given up. Nothing of the request was written, so the request may go
// to another connection or origin, a write included (see unsent).
var errStaleConn = errors.New("origin closed the pooled connection before the request was written")

// originConn is a plain-HTTP connection to an origin that checks, before
// the first byte of each request after the first, that the origin has not
// closed it while it sat in the pool.
//
// Why: fasthttp hands out pooled keep-alive connections without looking at
// them. When an origin dies or restarts, the kernel closes its side of
// every connection; the proxy's write still succeeds (it only fills the
// local socket buffer) and the read then sees EOF: "the server closed
// connection before returning the first response byte". For a write that
// error is ambiguous in general (the origin may have read and committed
// the request, then died), so it is not resent, and the client gets a 502
// although the origin never saw the request. Checking before writing turns
// the common case, an origin that closed before we wrote, into a provable
// "not sent".
//
// The check is one non-blocking MSG_PEEK recv: EOF (the origin closed), an
// error (it reset), or bytes no request asked for (an HTTP/1.1 server
// writes first only to say it is closing, e.g. a 408) all mean "do not
// write here". EAGAIN means the connection is open and quiet. It cannot
// catch an origin that closes between the check and the write; that
// request is answered 502 (or retried, if it is a read). TLS connections
// are not checked: a TLS 1.3 server sends session tickets unasked.
type originConn struct {
	net.Conn
	raw     syscall.RawConn
	replied bool // a response was read since the last write: the next write starts a request on a reused connection
}

// newOriginConn wraps c if its file descriptor can be peeked at.
func newOriginConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &originConn{Conn: c, raw: raw}
}

func (c *originConn) Read(b []byte) (int, error) {
	c.replied = true
	return c.Conn.Read(b)
}

func (c *originConn) Write(b []byte) (int, error) {
	if c.replied {
		c.replied = false
		if c.closedByOrigin() {
			return 0, errStaleConn
		}
	}
	return c.Conn.Write(b)
}

// closedByOrigin peeks at the socket without waiting and without consuming
// anything.
func (c *originConn) closedByOrigin() bool {
	// The previous request's read deadline may have passed, and a raw read
	// past its deadline fails without looking. fasthttp sets the next
	// deadline after writing the request.
	c.Conn.SetReadDeadline(time.Time{})
	closed := false
	err := c.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		// No error: 0 bytes (EOF) or unasked bytes. Any error but EAGAIN: a reset.
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = err != syscall.EAGAIN
		return true // never wait for readability
	})
	return closed || err != nil
}
