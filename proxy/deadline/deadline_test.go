package deadline

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// never is a granularity whose ticker does not fire during a test: the
// test sweeps itself.
const never = time.Hour

// backstop ends a test that would otherwise hang because a deadline never
// fired; it is no bound on when one fires.
const backstop = 10 * time.Second

func listen(t testing.TB, granularity time.Duration) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, granularity)
	t.Cleanup(func() { l.Close() })
	return l
}

// pair returns both ends of a connection accepted by l.
func pair(t testing.TB, l *Listener) (server *conn, client net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// A deadline that never fires would hang the test: the client's
	// close makes the server's Read or Write fail instead.
	backstop := time.AfterFunc(backstop, func() { client.Close() })
	t.Cleanup(func() { backstop.Stop(); client.Close(); accepted.Close() })
	return accepted.(*conn), client
}

func isTimeout(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

func serve(t *testing.T, ln net.Listener, s *fasthttp.Server) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Shutdown(); <-done })
}

func ok(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }

func TestIdleKeepAliveConnectionIsClosed(t *testing.T) {
	l := listen(t, 50*time.Millisecond)
	serve(t, l, &fasthttp.Server{Handler: ok, ReadTimeout: 200 * time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetReadDeadline(time.Now().Add(backstop))
	if _, err := io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(client)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first answer %d (close %v), want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %q, %v; want the server's close (EOF)", n, err)
	}
}

// A client that stalls in its header must get the same answer over the
// wrapped listener as over the plain one: the same error reached the error
// handler. fasthttp wraps that error (fmt.Errorf %w), so its own handler,
// which asserts *net.OpError, answers 400; the proxy's serverError, which
// uses errors.As, answers 408.
func TestStalledHeaderGetsFasthttpsTimeoutAnswer(t *testing.T) {
	proxyLike := func(ctx *fasthttp.RequestCtx, err error) {
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded) {
			ctx.Error("request not received in time", fasthttp.StatusRequestTimeout)
			return
		}
		ctx.Error("malformed request", fasthttp.StatusBadRequest)
	}
	answer := func(t *testing.T, ln net.Listener, errorHandler func(*fasthttp.RequestCtx, error)) string {
		serve(t, ln, &fasthttp.Server{Handler: ok, ErrorHandler: errorHandler, ReadTimeout: 200 * time.Millisecond})
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		client.SetReadDeadline(time.Now().Add(backstop))
		if _, err := io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(client).ReadString('\n')
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return line
	}
	for _, tc := range []struct {
		name         string
		errorHandler func(*fasthttp.RequestCtx, error)
		want         string
	}{
		{"fasthttp's error handler", nil, "HTTP/1.1 400 Bad Request\r\n"},
		{"the proxy's", proxyLike, "HTTP/1.1 408 Request Timeout\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if got := answer(t, plain, tc.errorHandler); got != tc.want {
				t.Fatalf("plain listener: %q, want %q: the test's premise changed", got, tc.want)
			}
			if got := answer(t, listen(t, 50*time.Millisecond), tc.errorHandler); got != tc.want {
				t.Fatalf("wrapped listener: %q, want %q as over the plain one", got, tc.want)
			}
		})
	}
}

func TestBlockedWriteTimesOut(t *testing.T) {
	l := listen(t, 50*time.Millisecond)
	server, _ := pair(t, l) // whose client never reads
	server.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	chunk := make([]byte, 1<<20)
	for {
		if _, err := server.Write(chunk); err != nil {
			if !isTimeout(err) {
				t.Fatalf("write failed with %v, want a timeout", err)
			}
			return
		}
	}
}

func TestPastDeadlineFires(t *testing.T) {
	l := listen(t, 50*time.Millisecond)
	server, _ := pair(t, l)
	server.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := server.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read under a past deadline: %v, want a timeout", err)
	}
}

// readByte has the client send a byte and the server read it.
func readByte(t *testing.T, server, client net.Conn) error {
	t.Helper()
	if _, err := client.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	_, err := io.ReadFull(server, make([]byte, 1))
	return err
}

func TestExtendedDeadlineNeverFails(t *testing.T) {
	l := listen(t, never)
	future := func() time.Time { return time.Now().Add(time.Hour) }

	t.Run("extended after the sweeper forced", func(t *testing.T) {
		server, client := pair(t, l)
		server.SetReadDeadline(time.Now())
		l.sweep(sinceEpoch())
		if _, err := server.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("read under the passed deadline: %v, want a timeout", err)
		}
		server.SetReadDeadline(future())
		if err := readByte(t, server, client); err != nil {
			t.Fatalf("read under the extended deadline: %v", err)
		}
	})
	t.Run("cleared after the sweeper forced", func(t *testing.T) {
		server, client := pair(t, l)
		server.SetReadDeadline(time.Now())
		l.sweep(sinceEpoch())
		server.SetReadDeadline(time.Time{})
		if err := readByte(t, server, client); err != nil {
			t.Fatalf("read with no deadline: %v", err)
		}
	})
	t.Run("extended after the sweeper decided", func(t *testing.T) {
		server, client := pair(t, l)
		server.SetReadDeadline(time.Now())
		expired, _ := l.collect(sinceEpoch(), nil)
		if len(expired) != 1 {
			t.Fatalf("%d deadlines passed, want 1", len(expired))
		}
		server.SetReadDeadline(future())
		expired[0].c.force(expired[0].d, expired[0].state)
		if err := readByte(t, server, client); err != nil {
			t.Fatalf("read under the extended deadline: %v", err)
		}
	})
	t.Run("reads and writes apart", func(t *testing.T) {
		server, client := pair(t, l)
		server.SetReadDeadline(time.Now())
		l.sweep(sinceEpoch())
		if _, err := server.Write([]byte{'y'}); err != nil {
			t.Fatalf("write after the read deadline fired: %v", err)
		}
		io.ReadFull(client, make([]byte, 1))
		server.SetReadDeadline(time.Time{})
		server.SetWriteDeadline(time.Now())
		l.sweep(sinceEpoch())
		if _, err := server.Write([]byte{'y'}); !isTimeout(err) {
			t.Fatalf("write under the passed deadline: %v, want a timeout", err)
		}
		if err := readByte(t, server, client); err != nil {
			t.Fatalf("read after the write deadline fired: %v", err)
		}
	})

	t.Run("SetDeadline sets both", func(t *testing.T) {
		server, client := pair(t, l)
		server.SetDeadline(time.Now())
		l.sweep(sinceEpoch())
		if _, err := server.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("read under the passed deadline: %v, want a timeout", err)
		}
		if _, err := server.Write([]byte{'y'}); !isTimeout(err) {
			t.Fatalf("write under the passed deadline: %v, want a timeout", err)
		}
		server.SetDeadline(time.Time{})
		if _, err := server.Write([]byte{'y'}); err != nil {
			t.Fatalf("write with no deadline: %v", err)
		}
		if err := readByte(t, server, client); err != nil {
			t.Fatalf("read with no deadline: %v", err)
		}
	})
	t.Run("fires at its time, not before", func(t *testing.T) {
		server, client := pair(t, l)
		at := time.Now().Add(time.Hour)
		server.SetReadDeadline(at)
		l.sweep(at.Sub(epoch).Nanoseconds() - 1)
		if err := readByte(t, server, client); err != nil {
			t.Fatalf("read a nanosecond before the deadline: %v", err)
		}
		l.sweep(at.Sub(epoch).Nanoseconds())
		if _, err := server.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("read at the deadline: %v, want a timeout", err)
		}
	})
	t.Run("wall clock deadline", func(t *testing.T) {
		// Without a monotonic reading the runtime counts the deadline
		// from the wall clock's now; it is the same instant as its
		// monotonic twin unless the wall clock was set meanwhile.
		server, _ := pair(t, l)
		at := time.Now().Add(time.Hour)
		if d := time.Duration(encode(at.Round(0))>>1 - encode(at)>>1); d.Abs() > time.Second {
			t.Fatalf("wall clock deadline recorded %s off its monotonic twin", d)
		}
		server.SetReadDeadline(time.Now().Round(0).Add(-time.Second))
		l.sweep(sinceEpoch())
		if _, err := server.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("read under a passed wall clock deadline: %v, want a timeout", err)
		}
	})

	// The request that arrives just as its idle time runs out: the sweep
	// and the Set that extends the deadline start together.
	race := func(server net.Conn, set time.Time) {
		server.SetReadDeadline(time.Now())
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() { <-start; l.sweep(sinceEpoch()) })
		wg.Go(func() { <-start; server.SetReadDeadline(set) })
		close(start)
		wg.Wait()
	}
	t.Run("extended while the sweeper runs", func(t *testing.T) {
		server, client := pair(t, l)
		for i := range 2000 {
			race(server, future())
			if err := readByte(t, server, client); err != nil {
				t.Fatalf("iteration %d: read under the extended deadline: %v", i, err)
			}
		}
	})
	// Two goroutines extend a forced deadline at once: the one that
	// returns first must not find the real one still forced.
	t.Run("extended by two at once", func(t *testing.T) {
		server, client := pair(t, l)
		for i := range 2000 {
			server.SetReadDeadline(time.Now())
			l.sweep(sinceEpoch())
			if _, err := client.Write([]byte{'x'}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var err error
			start := make(chan struct{})
			wg.Go(func() { <-start; server.SetReadDeadline(future()) })
			wg.Go(func() {
				<-start
				server.SetReadDeadline(future())
				_, err = io.ReadFull(server, make([]byte, 1))
			})
			close(start)
			wg.Wait()
			if err != nil {
				t.Fatalf("iteration %d: read under the extended deadline: %v", i, err)
			}
		}
	})
	t.Run("renewed in the past while the sweeper runs", func(t *testing.T) {
		server, _ := pair(t, l)
		for i := range 2000 {
			race(server, time.Now())
			l.sweep(sinceEpoch())
			if _, err := server.Read(make([]byte, 1)); !isTimeout(err) {
				t.Fatalf("iteration %d: read under the passed deadline: %v, want a timeout", i, err)
			}
		}
	})
}

func TestClose(t *testing.T) {
	l := listen(t, 50*time.Millisecond)
	a, _ := pair(t, l)
	b, _ := pair(t, l)
	c, _ := pair(t, l)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want the real conn's net.ErrClosed", err)
	}
	if err := a.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Set on a closed conn: %v, want net.ErrClosed", err)
	}
	l.mu.Lock()
	registered := append([]*conn(nil), l.conns...)
	l.mu.Unlock()
	if len(registered) != 2 {
		t.Fatalf("%d conns registered, want 2", len(registered))
	}
	for i, r := range registered {
		if r == a || r.index != i {
			t.Fatalf("registry %v: closed conn left, or an index wrong", registered)
		}
	}
	b.Close()

	// A closed listener's sweeper still enforces the deadlines of the
	// conns it accepted, and ends with the last one.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now())
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read after the listener closed: %v, want a timeout", err)
	}
	select {
	case <-l.sweeperDone:
		t.Fatal("sweeper ended with a conn open")
	default:
	}
	c.Close()
	waitSweeperDone(t, l)
}

func waitSweeperDone(t *testing.T, l *Listener) {
	t.Helper()
	select {
	case <-l.sweeperDone:
	case <-time.After(backstop):
		t.Fatal("sweeper still running")
	}
}

func TestCloseStopsIdleSweeper(t *testing.T) {
	l := listen(t, never)
	l.Close()
	waitSweeperDone(t, l) // at once, not an hour later
}

// BenchmarkSetDeadline sets a new deadline each time without reading the
// clock, which fasthttp does (time.Now().Add) either way and this VM makes
// slow: "time.Now" is that part alone. The real conn reads the clock
// itself (time.Until) on top of moving its timer.
func BenchmarkSetDeadline(b *testing.B) {
	l := listen(b, 500*time.Millisecond)
	wrapped, _ := pair(b, l)
	b.Run("time.Now", func(b *testing.B) {
		var t time.Time
		for b.Loop() {
			t = time.Now().Add(time.Minute)
		}
		_ = t
	})
	for _, c := range []struct {
		name string
		conn net.Conn
	}{{"wrapped", wrapped}, {"net.TCPConn", wrapped.Conn.(*net.TCPConn)}} {
		b.Run(c.name, func(b *testing.B) {
			at := time.Now().Add(time.Minute)
			b.ReportAllocs()
			for b.Loop() {
				at = at.Add(time.Microsecond)
				c.conn.SetReadDeadline(at)
			}
		})
	}
}

// BenchmarkSweep is one sweep over 20,000 conns none of whose deadlines
// passed, the common case. The conns share one real connection: the fds
// of this machine do not stretch to 20,000 pairs, and a sweep that
// forces nothing never calls it.
func BenchmarkSweep(b *testing.B) {
	l := listen(b, never)
	server, _ := pair(b, l)
	later := time.Now().Add(time.Hour)
	for range 20_000 - 1 {
		c := &conn{Conn: server.Conn, l: l}
		l.register(c)
		b.Cleanup(func() { c.Close() }) // so that the sweeper ends
		c.SetReadDeadline(later)
		c.SetWriteDeadline(later)
	}
	server.SetReadDeadline(later)
	b.ReportAllocs()
	for b.Loop() {
		l.sweep(sinceEpoch())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20_000, "ns/conn")
}
