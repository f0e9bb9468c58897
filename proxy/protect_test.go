package proxy

import (
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Distinct long URLs (each below PROXY_MAX_KEY_BYTES) must not grow the
// heap past the L1's and the group memory's bounds: both count the keys.
func TestL1AndGroupMemoryCountTheirKeys(t *testing.T) {
	o := newScripted(t)
	o.handle("/protect/long", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Edgecache-Groups", "post/1=1")
		cacheable(`{"id":1}`)(ctx)
	})
	cfg := testConfig(o.url())
	cfg.L1Bytes, cfg.GroupMemoryBytes = 1<<20, 512<<10
	p := startProxy(t, cfg)
	pad := strings.Repeat("x", 6<<10)
	for i := range 300 {
		r := get(t, p, "/protect/long?i="+strconv.Itoa(i)+"&pad="+pad)
		if !strings.Contains(cacheStatus(r), "stored") {
			t.Fatalf("miss %d not stored: %d %q", i, r.StatusCode(), cacheStatus(r))
		}
	}
	if keys := p.l1.Len() * len(pad); keys > int(cfg.L1Bytes) {
		t.Errorf("L1 keeps %d entries, their keys alone %d bytes, over PROXY_L1_BYTES %d", p.l1.Len(), keys, cfg.L1Bytes)
	}
	p.groupsOf.mu.RLock()
	remembered := len(p.groupsOf.m)
	p.groupsOf.mu.RUnlock()
	if keys := remembered * len(pad); keys > cfg.GroupMemoryBytes {
		t.Errorf("group memory keeps %d keys, %d bytes, over PROXY_GROUP_MEMORY_BYTES %d", remembered, keys, cfg.GroupMemoryBytes)
	}
}

// A cache key over PROXY_MAX_KEY_BYTES is refused before it costs
// anything: no origin request, nothing kept.
func TestLongCacheKeyIsRefused(t *testing.T) {
	o := newScripted(t)
	o.handle("/protect/key", cacheable(`{"id":1}`))
	p := startProxy(t, testConfig(o.url()))
	r := get(t, p, "/protect/key?pad="+strings.Repeat("x", 9<<10))
	if r.StatusCode() != fasthttp.StatusRequestURITooLong || !strings.Contains(string(r.Body()), `"uri_too_long"`) {
		t.Fatalf("got %d %s, want 414 uri_too_long", r.StatusCode(), r.Body())
	}
	if n := o.hits("/protect/key"); n != 0 {
		t.Fatalf("origin asked %d times", n)
	}
	if r := get(t, p, "/protect/key?pad=short"); r.StatusCode() != 200 {
		t.Fatalf("short key: %d", r.StatusCode())
	}
}

// A GET or HEAD has no body: one announced is refused before anything is
// read or asked, and the connection closes (its bytes must not be taken
// for the next request).
func TestReadWithBodyIsRefused(t *testing.T) {
	o := newScripted(t)
	o.handle("/protect/get-body", cacheable(`{"id":1}`))
	p := startProxy(t, testConfig(o.url()))
	for _, head := range []string{"Content-Length: 5\r\n\r\nhello", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"} {
		c := dial(t, p)
		io.WriteString(c, "GET /protect/get-body HTTP/1.1\r\nHost: edge.test\r\n"+head)
		resp, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(resp), "HTTP/1.1 413 ") || !strings.Contains(string(resp), `"code":"body_too_large"`) {
			t.Fatalf("GET with %q: %q, want the JSON 413", head, resp)
		}
	}
	if n := o.hits("/protect/get-body"); n != 0 {
		t.Fatalf("origin asked %d times", n)
	}
}

// A write's body is read as it arrives, never allocated as its
// Content-Length announces: connections that announce large bodies and
// send a few bytes cost the proxy little memory. Without streaming,
// fasthttp allocated each announced body whole before reading it.
func TestAnnouncedBodiesAreNotAllocated(t *testing.T) {
	o := newScripted(t)
	cfg := testConfig(o.url())
	cfg.MaxBodyBytes = 1 << 20 // allowed: the bodies would be read
	p := startProxy(t, cfg)
	const conns = 64
	before := heapAlloc()
	for range conns {
		c := dial(t, p)
		io.WriteString(c, "POST /protect/upload HTTP/1.1\r\nHost: edge.test\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"a\":")
	}
	// No signal says the proxy has read every head: watch the heap for a
	// while (a slow machine can only make this miss a regression).
	most := int64(0)
	for range 20 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		most = max(most, int64(m.HeapAlloc)-before)
		time.Sleep(50 * time.Millisecond)
	}
	if most > 16<<20 {
		t.Fatalf("heap grew %d MiB with %d connections announcing 1 MiB bodies", most>>20, conns)
	}
}

// A chunked write over PROXY_MAX_BODY_BYTES is refused once its length
// shows, and never reaches the origin.
func TestChunkedBodyOverTheLimitIsRefused(t *testing.T) {
	o := newScripted(t)
	o.handle("/protect/chunked", func(ctx *fasthttp.RequestCtx) {})
	cfg := testConfig(o.url())
	cfg.MaxBodyBytes = 1024
	p := startProxy(t, cfg)
	c := dial(t, p)
	chunk := strings.Repeat("x", 800)
	io.WriteString(c, "POST /protect/chunked HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"320\r\n"+chunk+"\r\n320\r\n"+chunk+"\r\n0\r\n\r\n")
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 413 ") || !strings.Contains(string(resp), `"code":"body_too_large"`) {
		t.Fatalf("chunked body over the limit: %q, want the JSON 413", resp)
	}
	if n := o.hits("/protect/chunked"); n != 0 {
		t.Fatalf("origin asked %d times", n)
	}
}
