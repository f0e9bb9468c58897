package bench

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// httpConn is one worker's keep-alive HTTP/1.1 connection to one target:
// the worker writes a request, then reads its answer, one at a time. It is
// the whole client of a run (seeding still uses fasthttp, target.go): one
// write per request, the answer read into one buffer kept for the
// connection's life, and only the header fields a run needs looked at
// (response.go).
type httpConn struct {
	t        *target
	nc       net.Conn // nil until dialled, and after an error
	lastUsed time.Time
	req      []byte // the request being sent, reused
	unsent   []byte // c.req until the first read of its answer writes it
	buf      []byte // the answer: head and body, reused
	head     responseHead
	body     []byte // in buf (or in its place, decoded): valid until the next exchange
}

// maxIdle is how long a connection may sit unused before it is redialled
// rather than reused: below any sane server idle timeout, so that a server
// closing it as the next request goes out is rare.
const maxIdle = 5 * time.Second

// errClosedBeforeAnswer is a connection the server closed before any byte
// of the answer: on a reused keep-alive connection, most likely its idle
// close racing the request.
var errClosedBeforeAnswer = errors.New("connection closed before the answer")

// exchange sends one request (method, uri with the target's prefix, an
// optional Authorization value and JSON body) and reads its answer into
// c.head and c.body, within timeout. A read that fails on a reused
// connection before any byte of its answer arrived is sent once more on a
// new connection (counted in retries): the server closed the connection
// while it was idle. Writes are never sent twice.
func (c *httpConn) exchange(method string, uri []byte, auth string, body []byte, timeout time.Duration, retries *atomic.Int64) error {
	c.req = c.appendRequest(c.req[:0], method, uri, auth, body)
	reused, err := c.send(timeout)
	if err == nil {
		err = c.readAnswer()
	}
	if err != nil && reused && method == "GET" && len(c.buf) == 0 && closedEarly(err) {
		retries.Add(1)
		c.closeConn()
		if _, err = c.send(timeout); err == nil {
			err = c.readAnswer()
		}
	}
	if err != nil || c.head.close {
		c.closeConn()
	}
	return err
}

// closedEarly says whether err is the server closing the connection before
// it answered.
func closedEarly(err error) bool {
	return errors.Is(err, errClosedBeforeAnswer) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// send readies c.req to be written, dialling first when there is no
// connection or it sat idle too long, and reports whether the connection
// was reused. The first read of the answer writes it (readMore).
func (c *httpConn) send(timeout time.Duration) (reused bool, err error) {
	now := time.Now()
	if c.nc != nil && now.Sub(c.lastUsed) > maxIdle {
		c.closeConn()
	}
	reused = c.nc != nil
	if c.nc == nil {
		if c.nc, err = c.dial(timeout); err != nil {
			return false, err
		}
	}
	c.lastUsed = now
	// One deadline for the write and the answer: the request's timeout.
	if err = c.nc.SetDeadline(now.Add(timeout)); err != nil {
		c.closeConn()
		return reused, err
	}
	c.unsent = c.req
	return reused, nil
}

func (c *httpConn) dial(timeout time.Duration) (net.Conn, error) {
	nc, err := dialRaw(c.t.addr, c.t.from, timeout)
	if err != nil || !c.t.tls {
		return nc, err
	}
	host, _, _ := net.SplitHostPort(c.t.addr)
	return tls.Client(nc, &tls.Config{ServerName: host}), nil
}

func (c *httpConn) closeConn() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// appendRequest appends the request's bytes: request line, Host, the
// optional fields, then the body.
func (c *httpConn) appendRequest(b []byte, method string, uri []byte, auth string, body []byte) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.t.host...)
	if auth != "" {
		b = append(b, "\r\nAuthorization: "...)
		b = append(b, auth...)
	}
	if body != nil {
		b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// readAnswer reads one answer into c.head and c.body. The connection holds
// nothing else: the bench never sends a request before the last answer is
// read, so any byte after the answer is the server's error.
func (c *httpConn) readAnswer() error {
	c.buf, c.body = c.buf[:0], nil
	var headLen int
	for {
		var err error
		if c.head, headLen, err = parseHead(c.buf); err != nil {
			return err
		}
		if headLen > 0 {
			if c.head.status >= 100 && c.head.status < 200 { // an interim answer: the real one follows
				c.buf = c.buf[:copy(c.buf, c.buf[headLen:])]
				continue
			}
			break
		}
		if err = c.readMore(); err != nil {
			if len(c.buf) == 0 && err == io.EOF {
				err = errClosedBeforeAnswer
			}
			return err
		}
	}
	h := &c.head
	switch {
	case !h.hasBody():
		return extraBytes(c.buf, headLen)
	case h.chunked:
		for {
			body, n, err := dechunk(c.buf[headLen:])
			if err != nil {
				return err
			}
			if n > 0 {
				c.body = body
				return extraBytes(c.buf, headLen+n)
			}
			if err = c.readMore(); err != nil {
				return unexpectedEOF(err)
			}
		}
	case h.contentLength >= 0:
		end := headLen + int(h.contentLength)
		for len(c.buf) < end {
			if err := c.readMore(); err != nil {
				return unexpectedEOF(err)
			}
		}
		c.body = c.buf[headLen:end]
		return extraBytes(c.buf, end)
	default: // no length: the body runs to the end of the connection
		h.close = true
		for {
			if err := c.readMore(); err == io.EOF {
				c.body = c.buf[headLen:]
				return nil
			} else if err != nil {
				return err
			}
			if len(c.buf)-headLen > maxBodyBytes {
				return badResponse("body over 16 MB")
			}
		}
	}
}

// readMore appends what the connection holds to c.buf, growing it when it
// is full.
func (c *httpConn) readMore() error {
	if len(c.buf) == cap(c.buf) {
		grown := make([]byte, len(c.buf), max(2*cap(c.buf), 32<<10))
		copy(grown, c.buf)
		c.buf = grown
	}
	free := c.buf[len(c.buf):cap(c.buf)]
	var n int
	var err error
	switch rc, raw := c.nc.(*rawConn); {
	case len(c.unsent) > 0 && raw:
		n, err = rc.writeThenRead(c.unsent, free)
	case len(c.unsent) > 0:
		if _, err = c.nc.Write(c.unsent); err == nil {
			n, err = c.nc.Read(free)
		}
	default:
		n, err = c.nc.Read(free)
	}
	c.unsent = nil
	c.buf = c.buf[:len(c.buf)+n]
	return err
}

// extraBytes is an error when the connection held more than the answer.
func extraBytes(buf []byte, end int) error {
	if len(buf) > end {
		return badResponse("bytes after the answer")
	}
	return nil
}

// unexpectedEOF turns the end of the connection inside an answer into an
// error that says so.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
