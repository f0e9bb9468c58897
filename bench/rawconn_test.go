package bench

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// rawPair is a rawConn dialled to a listener of the test's, and the
// listener's side of it.
func rawPair(t *testing.T) (*rawConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := dialRaw(ln.Addr().String(), nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c.(*rawConn), s.(*net.TCPConn)
}

// A write far larger than the socket buffers is written whole (the write
// waits for the reader) and read back byte for byte.
func TestRawConnMovesBytesBothWays(t *testing.T) {
	c, s := rawPair(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(s, int64(len(big))))
		got <- b
	}()
	if n, err := c.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the listener read %d bytes, not the %d written", len(b), len(big))
	}
	go s.Write(big)
	b, err := io.ReadAll(io.LimitReader(c, int64(len(big))))
	if err != nil || !bytes.Equal(b, big) {
		t.Fatalf("read back %d bytes, %v; want the %d written", len(b), err, len(big))
	}
}

// The end of the stream is io.EOF, which the client's retry of a closed
// keep-alive connection looks for.
func TestRawConnEOF(t *testing.T) {
	c, s := rawPair(t)
	s.Close()
	if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer closed = %d, %v; want 0, io.EOF", n, err)
	}
}

// A deadline still holds: a read that waits past it is a timeout, as the
// error table counts it.
func TestRawConnDeadline(t *testing.T) {
	c, _ := rawPair(t)
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := c.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) || errorKind(err, 0) != "timeout" {
		t.Fatalf("Read past the deadline = %v (kind %q); want a timeout", err, errorKind(err, 0))
	}
}

// A reset connection is reported as one, not as an unknown error.
func TestRawConnReset(t *testing.T) {
	c, s := rawPair(t)
	s.SetLinger(0)
	s.Close() // with linger 0: a RST, not a FIN
	_, err := c.Read(make([]byte, 10))
	if kind := errorKind(err, 0); kind != "connection reset" {
		t.Fatalf("Read from a reset connection = %v (kind %q); want kind connection reset", err, kind)
	}
}

// writeThenRead sends a request and reads the start of its answer, also
// when the request does not fit in the socket's send buffer at once.
func TestRawConnWriteThenRead(t *testing.T) {
	c, s := rawPair(t)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, size := range []int{100, 4 << 20} {
		req := bytes.Repeat([]byte("r"), size)
		go func() {
			io.ReadFull(s, make([]byte, size))
			s.Write([]byte("answer"))
		}()
		buf := make([]byte, 100)
		n, err := c.writeThenRead(req, buf)
		if err != nil || string(buf[:n]) != "answer" {
			t.Fatalf("%d-byte request: read %q, %v; want answer", size, buf[:n], err)
		}
	}
}
