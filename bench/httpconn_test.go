package bench

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func testConn(t *testing.T, base string) *httpConn {
	t.Helper()
	var retries atomic.Int64
	tg, err := newTarget(base, 1, time.Second, &retries)
	if err != nil {
		t.Fatal(err)
	}
	c := &httpConn{t: tg}
	t.Cleanup(c.closeConn)
	return c
}

// Answers with a length, chunked (net/http chunks a flushed answer), and
// without a body, one after another over one keep-alive connection.
func TestHTTPConnReadsEveryKindOfAnswer(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Status", "edgecache; fwd=miss")
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "hello ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "world")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/put":
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, r.Method+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type")+" "+string(b))
		default:
			io.WriteString(w, strings.Repeat("x", 100000))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := testConn(t, srv.URL)
	var retries atomic.Int64
	for _, x := range []struct {
		method, path, auth, body string
		status                   int
		want                     string
	}{
		{"GET", "/big", "", "", 200, strings.Repeat("x", 100000)},
		{"GET", "/chunked", "", "", 200, "hello world"},
		{"GET", "/empty", "", "", 204, ""},
		{"PUT", "/put", "Bearer 1.x", `{"a":1}`, 201, `PUT Bearer 1.x application/json {"a":1}`},
		{"GET", "/chunked", "", "", 200, "hello world"},
	} {
		var body []byte
		if x.body != "" {
			body = []byte(x.body)
		}
		if err := c.exchange(x.method, []byte(x.path), x.auth, body, time.Second, &retries); err != nil {
			t.Fatalf("%s %s: %v", x.method, x.path, err)
		}
		if c.head.status != x.status || string(c.body) != x.want || string(c.head.cacheStatus) != "edgecache; fwd=miss" {
			t.Fatalf("%s %s: status %d, Cache-Status %q, body %.40q; want %d, %.40q", x.method, x.path, c.head.status, c.head.cacheStatus, c.body, x.status, x.want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for five requests; want one, kept alive", n)
	}
}

// oneAnswerServer answers the first request of every connection, then
// closes it, as a server does that closes idle keep-alive connections
// just as the next request arrives.
func oneAnswerServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				r := bufio.NewReader(nc)
				req, err := http.ReadRequest(r)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// A read whose reused connection the server closed is sent once more on a
// new one, and counted; a write is not: it may have been applied.
func TestHTTPConnRetriesReadsOnAClosedKeepAliveConnection(t *testing.T) {
	c := testConn(t, oneAnswerServer(t))
	var retries atomic.Int64
	for i := range 3 {
		if err := c.exchange("GET", []byte("/"), "", nil, time.Second, &retries); err != nil || string(c.body) != "ok" {
			t.Fatalf("GET %d: %q, %v; want ok", i, c.body, err)
		}
		// Give the server's close time to arrive, as it does in a run
		// between two requests on one connection.
		c.nc.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.nc.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("the server did not close the connection: %v", err)
		}
		c.nc.SetReadDeadline(time.Time{})
	}
	if n := retries.Load(); n != 2 {
		t.Errorf("%d retries; want 2 (every GET after the first)", n)
	}
	err := c.exchange("PUT", []byte("/"), "", []byte("{}"), time.Second, &retries)
	if !errors.Is(err, errClosedBeforeAnswer) || errorKind(err, 0) != "connection closed" || retries.Load() != 2 {
		t.Fatalf("PUT on a closed connection: %v (kind %q), %d retries; want connection closed, not retried", err, errorKind(err, 0), retries.Load())
	}
}

// A server that sends garbage gets an error and a closed connection, not a
// hang or a panic.
func TestHTTPConnBadAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		http.ReadRequest(bufio.NewReader(nc))
		io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
		io.Copy(io.Discard, nc)
	}()
	c := testConn(t, "http://"+ln.Addr().String())
	var retries atomic.Int64
	err = c.exchange("GET", []byte("/"), "", nil, time.Second, &retries)
	if err == nil || !strings.Contains(err.Error(), "bad response") || c.nc != nil {
		t.Fatalf("answer with bytes after it: %v, connection open %v; want a bad response, closed", err, c.nc != nil)
	}
}
