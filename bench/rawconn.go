package bench

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// rawConn is a TCP connection whose reads and writes are plain
// syscall.RawSyscall calls on its non-blocking socket, made through
// syscall.RawConn so that waiting for the socket still parks the goroutine
// in the runtime's network poller and deadlines still hold.
//
// Why: net.Conn's Read and Write enter the runtime's syscall bookkeeping
// (entersyscall), which wakes the runtime's monitor thread (sysmon) when
// it sleeps, and lets it hand the generator's one P to another thread when
// a loopback write lasts over 20 µs (the kernel delivers to the target
// during it). In a real run at 5,000 requests/s that thread churn was most
// of the generator's CPU: a quarter of its samples were the monitor's
// context switches alone. A read or write on a non-blocking socket never
// blocks, so the bookkeeping buys nothing here.
type rawConn struct {
	*net.TCPConn
	raw syscall.RawConn

	// The callbacks' arguments and results: set around each call, so that
	// the callbacks are made once and a call allocates nothing.
	rbuf, wbuf                       []byte
	rn, wn                           int
	rerrno, werrno                   syscall.Errno
	written                          bool // writeThenRead: the request is out
	readFn, writeFn, writeThenReadFn func(fd uintptr) bool
}

// dialRaw dials addr over TCP, from the local address from when it is not
// nil, and returns the connection as a rawConn.
func dialRaw(addr string, from *net.TCPAddr, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if from != nil {
		d.LocalAddr = from
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	raw, err := tc.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	rc := &rawConn{TCPConn: tc, raw: raw}
	rc.readFn = rc.readOnce
	rc.writeFn = rc.writeAll
	rc.writeThenReadFn = rc.writeThenReadOnce
	return rc, nil
}

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerrno = p, 0, 0
	err := c.raw.Read(c.readFn)
	c.rbuf = nil
	switch {
	case err != nil: // a deadline, or the connection was closed
		return 0, err
	case c.rerrno != 0:
		return 0, c.opError("read", c.rerrno)
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// readOnce reads what the socket holds into c.rbuf; false (wait for the
// socket) when it holds nothing yet.
func (c *rawConn) readOnce(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch errno {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rerrno = errno
		return true
	}
}

func (c *rawConn) Write(p []byte) (int, error) {
	c.wbuf, c.wn, c.werrno = p, 0, 0
	err := c.raw.Write(c.writeFn)
	c.wbuf = nil
	switch {
	case err != nil:
		return c.wn, err
	case c.werrno != 0:
		return c.wn, c.opError("write", c.werrno)
	}
	return c.wn, nil
}

// writeAll writes c.wbuf whole; false (wait for the socket) when its
// send buffer is full.
func (c *rawConn) writeAll(fd uintptr) bool {
	for len(c.wbuf) > 0 {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&c.wbuf[0])), uintptr(len(c.wbuf)))
		switch errno {
		case 0:
			c.wn += int(n)
			c.wbuf = c.wbuf[n:]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.werrno = errno
		return true
	}
	return true
}

// writeThenRead writes p whole, then reads the first bytes of the answer
// into buf. It saves Write's and Read's read that finds nothing yet (one
// syscall a request): the write is made from inside RawConn.Read, after
// the runtime has reset the socket's readiness and before it waits for it,
// so an answer that arrives at once is never missed, and the first read is
// made once the socket is readable.
func (c *rawConn) writeThenRead(p, buf []byte) (int, error) {
	c.wbuf, c.wn, c.werrno, c.written = p, 0, 0, false
	c.rbuf, c.rn, c.rerrno = buf, 0, 0
	err := c.raw.Read(c.writeThenReadFn)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case c.werrno != 0:
		return 0, c.opError("write", c.werrno)
	case len(c.wbuf) > 0: // the send buffer was full: the rest as Write does it
		if _, err := c.Write(c.wbuf); err != nil {
			return 0, err
		}
		return c.Read(buf)
	case c.rerrno != 0:
		return 0, c.opError("read", c.rerrno)
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

func (c *rawConn) writeThenReadOnce(fd uintptr) bool {
	if !c.written {
		c.written = true
		if done := c.writeAll(fd); !done || c.werrno != 0 {
			return true
		}
		return false // wait for the answer
	}
	return c.readOnce(fd)
}

// opError wraps errno as net.Conn's Read and Write do, so that errorKind
// (connection reset, …) and the client's retry of a closed keep-alive
// connection see the same errors.
func (c *rawConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
