// Package proxyproto is a net.Listener whose connections from trusted load
// balancers begin with a PROXY protocol header (version 1, text, or 2,
// binary: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt),
// and report the client it names as their RemoteAddr.
//
// A load balancer that works at the TCP level (AWS NLB, HAProxy in mode
// tcp, or any HAProxy server line with send-proxy-v2) cannot add
// X-Forwarded-For; it sends the client's address in this header instead,
// once, before the first byte it relays.
//
// Only a peer inside the trusted networks must send the header, and only
// its header is read: anyone else's bytes are the protocol above (HTTP),
// so a client that sends a PROXY line of its own gets the HTTP server's
// answer to a malformed request and chooses nothing. A trusted peer whose
// header is missing, malformed or not complete in time has its connection
// closed, with a log line: the spec forbids guessing whether a header is
// there.
//
// The header is read in the connection's first Read (or RemoteAddr), in
// the goroutine serving the connection, never in Accept: a peer that
// sends half a header and stalls holds up only its own connection, until
// the read deadline (the earlier of the caller's and the listener's
// timeout) passes.
package proxyproto

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// A Listener accepts connections, reading the PROXY header of those from
// trusted peers.
type Listener struct {
	net.Listener
	trusted []netip.Prefix
	timeout time.Duration
	log     *zap.Logger
}

// NewListener wraps ln. A connection whose TCP peer is inside trusted
// must begin with a PROXY header, complete within timeout of the first
// Read; bad headers are logged to log.
func NewListener(ln net.Listener, trusted []netip.Prefix, timeout time.Duration, log *zap.Logger) *Listener {
	return &Listener{Listener: ln, trusted: trusted, timeout: timeout, log: log}
}

// Accept returns the next connection: as accepted when its peer is not
// trusted, else one that reads the header first.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	peer := addrOf(c.RemoteAddr())
	if !slices.ContainsFunc(l.trusted, func(p netip.Prefix) bool { return p.Contains(peer) }) {
		return c, nil
	}
	return &conn{Conn: c, l: l}, nil
}

// addrOf is a TCP address's IP, IPv4 unmapped; invalid for anything else.
func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// errBadHeader is what a connection whose header was refused returns from
// Read. It wraps net.ErrClosed because the connection is closed: an HTTP
// server then answers nothing (fasthttp writes no error response to a
// closed connection), which is right, since the peer is a load balancer
// that did not speak the protocol it was configured to.
type errBadHeader struct{ cause error }

func (e errBadHeader) Error() string   { return "proxyproto: connection closed: " + e.cause.Error() }
func (e errBadHeader) Unwrap() []error { return []error{net.ErrClosed, e.cause} }

// errNothingSent: the peer closed without sending a byte, as a TCP health
// check does. Nothing was malformed, so nothing is logged, as an HTTP
// server logs nothing for an empty connection.
var errNothingSent = errors.New("proxyproto: closed by the peer before any byte")

// A conn is a connection from a trusted peer.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once // reads the header

	// Set by the header's read, read only after once.Do.
	remote net.Addr // the client: the header's, or the peer
	err    error    // the header's fault: every Read returns it

	// mu guards rest, and readDeadline until headerDone.
	mu           sync.Mutex
	rest         []byte    // read past the header, for the next Reads
	readDeadline time.Time // the caller's, while the header is read
	headerDone   atomic.Bool
}

// readHeader reads the header under the earlier of the caller's read
// deadline and the listener's timeout, then puts the caller's back.
func (c *conn) readHeader() {
	c.remote = c.Conn.RemoteAddr()
	c.mu.Lock()
	deadline := c.readDeadline
	c.mu.Unlock()
	if limit := time.Now().Add(c.l.timeout); deadline.IsZero() || limit.Before(deadline) {
		deadline = limit
	}
	var source netip.AddrPort
	err := c.Conn.SetReadDeadline(deadline)
	if err == nil {
		source, err = c.parse()
	}
	c.mu.Lock()
	if err == nil {
		err = c.Conn.SetReadDeadline(c.readDeadline)
	}
	c.headerDone.Store(true)
	c.mu.Unlock()
	if err != nil {
		c.err = errBadHeader{err}
		c.Conn.Close()
		if errors.Is(err, errNothingSent) {
			return
		}
		c.l.log.Warn("PROXY protocol header refused, connection closed",
			zap.String("peer", c.remote.String()), zap.Error(err))
		return
	}
	if source.IsValid() {
		c.remote = net.TCPAddrFromAddrPort(source)
	}
}

// parse reads until Parse has a whole header, and keeps what came after
// it for the next Reads. 256 bytes hold any version 1 line and a version 2
// header with a few TLVs (an NLB's VPC endpoint ID); a longer one grows
// the buffer.
func (c *conn) parse() (netip.AddrPort, error) {
	buf := make([]byte, 0, 256)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, readErr := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		source, size, err := Parse(buf)
		switch {
		case err == nil:
			c.mu.Lock()
			c.rest = buf[size:]
			c.mu.Unlock()
			return source, nil
		case !errors.Is(err, errIncomplete):
			return netip.AddrPort{}, err
		case len(buf) == 0 && errors.Is(readErr, io.EOF):
			return netip.AddrPort{}, errNothingSent
		case readErr != nil:
			return netip.AddrPort{}, errors.Join(errors.New("proxyproto: header incomplete"), readErr)
		}
	}
}

// Read returns the bytes after the header.
func (c *conn) Read(b []byte) (int, error) {
	c.once.Do(c.readHeader)
	if c.err != nil {
		return 0, c.err
	}
	c.mu.Lock()
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.rest = nil // the buffer can go
	c.mu.Unlock()
	return c.Conn.Read(b)
}

// RemoteAddr is the client the header named, or the peer. It waits for
// the header if no Read has yet.
func (c *conn) RemoteAddr() net.Addr {
	c.once.Do(c.readHeader)
	return c.remote
}

// SetReadDeadline, before the header is read, only records t: the header
// is read under its own deadline, then t is set.
func (c *conn) SetReadDeadline(t time.Time) error {
	if !c.headerDone.Load() {
		c.mu.Lock()
		if !c.headerDone.Load() {
			c.readDeadline = t
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.Conn.SetWriteDeadline(t))
}
