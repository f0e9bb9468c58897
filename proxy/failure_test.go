package proxy

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// jsonErrorCode checks the project's error shape and returns its code.
func jsonErrorCode(t *testing.T, r *fasthttp.Response) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(r.Body(), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("body %q is not the JSON error shape: %v", r.Body(), err)
	}
	return e.Error.Code
}

func TestStaleIfErrorAndWritesWhileOriginIsDown(t *testing.T) {
	o := newScripted(t)
	stale := func(body string) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			// Already stale when stored (Age beyond s-maxage), so the next
			// read goes to the origin; stale-if-error allows it on failure.
			ctx.Response.Header.Set("Cache-Control", "public, s-maxage=10, stale-if-error=300")
			ctx.Response.Header.Set("Age", "50")
			ctx.Response.Header.Set("ETag", `"1"`)
			ctx.SetBodyString(body)
		}
	}
	o.handle("/sie/5xx", stale("five"))
	o.handle("/sie/down", stale("down"))
	o.handle("/sie/never", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(200) })
	cfg := testConfig(o.url())
	cfg.OriginTimeout = 2 * time.Second
	p := startProxy(t, cfg)
	for _, path := range []string{"/sie/5xx", "/sie/down"} {
		if r := get(t, p, path); r.StatusCode() != 200 || !strings.Contains(cacheStatus(r), "stored") {
			t.Fatalf("%s: %d %q", path, r.StatusCode(), cacheStatus(r))
		}
	}

	// The origin answers 503: the stale entry is served instead.
	o.handle("/sie/5xx", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	r := get(t, p, "/sie/5xx")
	if r.StatusCode() != 200 || string(r.Body()) != "five" || !strings.Contains(cacheStatus(r), "fwd-status=503") ||
		!strings.Contains(cacheStatus(r), "stale-if-error") {
		t.Fatalf("origin 503: %d %q %q, want the stale entry", r.StatusCode(), r.Body(), cacheStatus(r))
	}

	// The origin is gone (connection refused).
	o.srv.Shutdown()
	r = get(t, p, "/sie/down")
	if r.StatusCode() != 200 || string(r.Body()) != "down" || !strings.Contains(cacheStatus(r), "stale-if-error") {
		t.Fatalf("origin down: %d %q %q, want the stale entry", r.StatusCode(), r.Body(), cacheStatus(r))
	}
	// Nothing stored: a clean 502.
	r = get(t, p, "/sie/never")
	if r.StatusCode() != 502 || jsonErrorCode(t, r) != "origin_unreachable" {
		t.Fatalf("uncached read with origin down: %d %q", r.StatusCode(), r.Body())
	}
	// Writes: the refused dials ejected the only origin, so a 503 at once,
	// not sent; never a hang.
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		r = do(t, p, m, "/sie/write", nil, "{}")
		if r.StatusCode() != 503 || jsonErrorCode(t, r) != "origin_unavailable" {
			t.Fatalf("%s with origin down: %d %q", m, r.StatusCode(), r.Body())
		}
	}
}

func TestWritesToASlowOrBusyOriginFailCleanlyAndAreNeverRetried(t *testing.T) {
	o := newScripted(t)
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	o.handle("/slow/write", func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
	})
	// An origin that reads the request and closes the connection without
	// answering: a retry would send the write twice. It counts the writes
	// it read (the proxy's health probes are GETs).
	dropper, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dropper.Close()
	var dropped atomic.Int64
	go func() {
		for {
			c, err := dropper.Accept()
			if err != nil {
				return
			}
			b := make([]byte, 4096)
			if n, _ := c.Read(b); bytes.HasPrefix(b[:n], []byte("POST ")) {
				dropped.Add(1)
			}
			c.Close()
		}
	}()
	cfg := testConfig(o.url())
	// A write has a deadline of its own: were it the reads' (an hour
	// here), this write would hang until the test times out.
	cfg.OriginTimeout, cfg.OriginWriteTimeout = time.Hour, 300*time.Millisecond
	cfg.OriginMaxConns = 1
	cfg.OriginMaxConnWait = 50 * time.Millisecond
	// Health probes that time out on a busy machine would eject the origin
	// and answer the writes below at once, without reaching it.
	cfg.OriginProbeInterval = time.Hour
	p := startProxy(t, cfg)

	r := do(t, p, "PUT", "/slow/write", nil, "{}")
	if r.StatusCode() != 504 || jsonErrorCode(t, r) != "origin_timeout" {
		t.Fatalf("slow origin: %d %q, want 504 origin_timeout", r.StatusCode(), r.Body())
	}
	if n := o.hits("/slow/write"); n != 1 {
		t.Fatalf("the origin saw the write %d times, want 1", n)
	}
	dcfg := testConfig("http://" + dropper.Addr().String())
	r = do(t, startProxy(t, dcfg), "POST", "/slow/drop", nil, "{}")
	if r.StatusCode() != 502 {
		t.Fatalf("dropped connection: %d %q, want 502", r.StatusCode(), r.Body())
	}
	if n := dropped.Load(); n != 1 {
		t.Fatalf("the origin saw the write %d times, want exactly 1 (writes are never retried)", n)
	}

	// One connection allowed and it is busy: 503 after the wait.
	cfg.OriginTimeout = 30 * time.Second
	busy := startProxy(t, cfg)
	done := make(chan *fasthttp.Response)
	go func() { done <- do(t, busy, "PUT", "/slow/write", nil, "{}") }()
	for range 2 { // the first write holds the only connection (the drained one from the 504 case above arrives too)
		select {
		case <-arrived:
		case r := <-done:
			t.Fatalf("the write meant to hold the connection was answered %d %q without reaching the origin", r.StatusCode(), r.Body())
		}
	}
	r = do(t, busy, "PUT", "/slow/write", nil, "{}")
	if r.StatusCode() != 503 || jsonErrorCode(t, r) != "origin_busy" {
		t.Fatalf("busy origin: %d %q, want 503 origin_busy", r.StatusCode(), r.Body())
	}
	close(release)
	<-done
}
