package proxyproto

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// backstop ends a test that would otherwise hang; it bounds nothing the
// test measures.
const backstop = 10 * time.Second

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// listen is a Listener on loopback trusting trusted, with its log.
func listen(t *testing.T, trusted []netip.Prefix, timeout time.Duration) (*Listener, *observer.ObservedLogs) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	l := NewListener(ln, trusted, timeout, zap.New(core))
	t.Cleanup(func() { l.Close() })
	return l, logs
}

// dial connects to l and sends b.
func dial(t *testing.T, l net.Listener, b []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	stop := time.AfterFunc(backstop, func() { c.Close() })
	t.Cleanup(func() { stop.Stop(); c.Close() })
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	stop := time.AfterFunc(backstop, func() { c.Close() })
	t.Cleanup(func() { stop.Stop(); c.Close() })
	return c
}

// A trusted peer's header names the client; what follows it is read as
// sent, whether it came in the header's packet or later.
func TestTrustedPeerHeaderNamesTheClient(t *testing.T) {
	l, _ := listen(t, loopback, backstop)
	for _, c := range []struct {
		name   string
		header []byte
		want   string // "": the peer
	}{
		{"v1", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n"), "203.0.113.7:56324"},
		{"v2 IPv6 with TLVs", v2Header(1, 0x21, append(v2Addrs(client6, front6), awsTLV...)), "[2001:db8::7]:56324"},
		{"v2 LOCAL", v2Header(0, 0x00, nil), ""},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := dial(t, l, append(c.header, "hello "...))
			server := accept(t, l)
			want := c.want
			if want == "" {
				want = client.LocalAddr().String()
			}
			if got := server.RemoteAddr().String(); got != want {
				t.Errorf("RemoteAddr %s, want %s", got, want)
			}
			if _, err := client.Write([]byte("world")); err != nil {
				t.Fatal(err)
			}
			client.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(server)
			if err != nil || string(got) != "hello world" {
				t.Errorf("read %q, %v; want %q", got, err, "hello world")
			}
		})
	}
}

// A peer outside the trusted networks is not asked for a header: its
// bytes, a PROXY line included, are the protocol above, and its address
// is its own.
func TestUntrustedPeerIsReadAsSent(t *testing.T) {
	l, _ := listen(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, backstop)
	sent := "PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n"
	client := dial(t, l, []byte(sent))
	server := accept(t, l)
	if got, want := server.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want the peer %s", got, want)
	}
	client.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(server); err != nil || string(got) != sent {
		t.Errorf("read %q, %v; want %q", got, err, sent)
	}
}

// A trusted peer without a valid header: the connection is closed (the
// peer sees it end), Read says so, a log line names the peer.
func TestTrustedPeerWithoutHeaderIsClosed(t *testing.T) {
	for _, c := range []struct{ name, sent string }{
		{"HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"bad address", "PROXY TCP4 203.0.113.777 10.0.0.1 56324 443\r\n"},
		{"half, then EOF", "PROXY TCP4 203.0.11"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, logs := listen(t, loopback, backstop)
			client := dial(t, l, []byte(c.sent))
			client.(*net.TCPConn).CloseWrite()
			server := accept(t, l)
			n, err := server.Read(make([]byte, 64))
			if n != 0 || !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read = %d, %v; want the connection closed", n, err)
			}
			if _, err := server.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after the refusal: %v, want the connection closed", err)
			}
			entries := logs.FilterMessage("PROXY protocol header refused, connection closed").All()
			if len(entries) != 1 || entries[0].ContextMap()["peer"] != client.LocalAddr().String() {
				t.Errorf("log %v, want one line naming the peer %s", entries, client.LocalAddr())
			}
		})
	}
}

// A trusted peer that closes without sending anything (a TCP health
// check) is closed too, and not logged: nothing was malformed.
func TestEmptyConnectionIsNotLogged(t *testing.T) {
	l, logs := listen(t, loopback, backstop)
	dial(t, l, nil).Close()
	server := accept(t, l)
	if n, err := server.Read(make([]byte, 64)); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read = %d, %v; want the connection closed", n, err)
	}
	if n := logs.Len(); n != 0 {
		t.Errorf("%d log lines, want none: %v", n, logs.All())
	}
}

// Half a header, then nothing: Accept goes on serving others meanwhile,
// and the stalled connection is closed when the header's time is up.
func TestStalledHeaderBlocksOnlyItsConnection(t *testing.T) {
	l, logs := listen(t, loopback, time.Second) // the stalled connection's end; nothing waits for it
	dial(t, l, []byte("PROXY TCP4 203.0.113.7 10.0"))
	stalledServer := accept(t, l)
	stalledRead := make(chan error, 1)
	go func() {
		_, err := stalledServer.Read(make([]byte, 64))
		stalledRead <- err
	}()

	dial(t, l, []byte("PROXY TCP4 198.51.100.2 10.0.0.1 1000 443\r\n"))
	if got := accept(t, l).RemoteAddr().String(); got != "198.51.100.2:1000" {
		t.Errorf("second connection from %s, want 198.51.100.2:1000", got)
	}
	select {
	case err := <-stalledRead:
		t.Fatalf("the stalled header's Read ended (%v) before the second connection was served", err)
	default:
	}

	if err := <-stalledRead; !errors.Is(err, net.ErrClosed) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("stalled Read: %v, want a timeout and the connection closed", err)
	}
	if n := logs.FilterMessage("PROXY protocol header refused, connection closed").Len(); n != 1 {
		t.Errorf("%d log lines, want 1", n)
	}
	if _, err := stalledServer.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after the refusal: %v, want the connection closed", err)
	}
}

// recording wraps a listener's connections to record the read deadlines
// they are given.
type recording struct {
	net.Listener
	mu        sync.Mutex
	deadlines []time.Time
}

func (r *recording) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	return recordingConn{c, r}, err
}

type recordingConn struct {
	net.Conn
	r *recording
}

func (c recordingConn) SetReadDeadline(t time.Time) error {
	c.r.mu.Lock()
	c.r.deadlines = append(c.r.deadlines, t)
	c.r.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// The header is read under the listener's timeout when that is the
// earlier, under the caller's deadline when that is; afterwards the
// connection has the caller's deadline again.
func TestHeaderDeadlineThenTheCallers(t *testing.T) {
	for _, c := range []struct {
		name   string
		caller time.Duration // from now; 0: none set
	}{
		{"no caller deadline", 0},
		{"caller's later", 2 * time.Hour},
		{"caller's earlier", 30 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			rec := &recording{Listener: inner}
			l := NewListener(rec, loopback, time.Hour, zap.NewNop())
			defer l.Close()
			dial(t, l, []byte("PROXY UNKNOWN\r\nx"))
			server := accept(t, l)
			start := time.Now()
			var callers time.Time
			if c.caller > 0 {
				callers = start.Add(c.caller)
				server.SetReadDeadline(callers)
			}
			if _, err := server.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.deadlines) != 2 {
				t.Fatalf("read deadlines set %v, want the header's, then the caller's", rec.deadlines)
			}
			header := rec.deadlines[0]
			if c.caller == 0 || c.caller > time.Hour {
				if header.Before(start.Add(time.Hour)) || header.After(time.Now().Add(time.Hour)) {
					t.Errorf("header read under %v, want an hour from the first Read (%v)", header, start)
				}
			} else if !header.Equal(callers) {
				t.Errorf("header read under %v, want the caller's %v", header, callers)
			}
			if !rec.deadlines[1].Equal(callers) {
				t.Errorf("then %v, want the caller's %v", rec.deadlines[1], callers)
			}
		})
	}
}

// What a connection costs: dial, send a v2 header (or none, from an
// untrusted peer) and a byte, accept, read the byte, close. The difference
// between the two is the header's share.
func BenchmarkConnection(b *testing.B) {
	header := v2Header(1, 0x11, append(v2Addrs(client4, front4), awsTLV...))
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		sent    []byte
	}{
		{"untrusted-no-header", nil, []byte("x")},
		{"trusted-v2-header", loopback, append(header, 'x')},
	} {
		b.Run(c.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			l := NewListener(ln, c.trusted, backstop, zap.NewNop())
			defer l.Close()
			one := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				client, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := client.Write(c.sent); err != nil {
					b.Fatal(err)
				}
				server, err := l.Accept()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(server, one); err != nil || one[0] != 'x' {
					b.Fatalf("read %q, %v", one, err)
				}
				server.Close()
				client.Close()
			}
		})
	}
}
