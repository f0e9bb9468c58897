package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
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
	run := runID()
	for i := range 300 {
		r := get(t, p, "/protect/long?run="+run+"&i="+strconv.Itoa(i)+"&pad="+pad)
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

// rawGet sends one GET with extra raw header lines on a connection of its
// own and returns the answer.
func rawGet(t *testing.T, p *Proxy, path, lines string) *fasthttp.Response {
	t.Helper()
	c := dial(t, p)
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: edge.test\r\n"+lines+"Connection: close\r\n\r\n")
	resp := new(fasthttp.Response)
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	return resp
}

// Any Authorization line makes a read a pass, not only the first one: an
// empty first line must not hide a token on the second.
func TestEveryAuthorizationLineMakesAPass(t *testing.T) {
	o := newScripted(t)
	// max-age alone: nothing in RFC 9111 §3.5 lets a shared cache store
	// the answer to an authorized request.
	o.handle("/protect/auth", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		ctx.SetBodyString(`{"id":1}`)
	})
	p := startProxy(t, testConfig(o.url()))
	path := "/protect/auth?run=" + runID()
	r := rawGet(t, p, path, "Authorization:\r\nAuthorization: Bearer secret\r\n")
	if !strings.Contains(cacheStatus(r), "fwd=bypass") || strings.Contains(cacheStatus(r), "stored") {
		t.Fatalf("authorized read: %q, want a pass", cacheStatus(r))
	}
	if r := get(t, p, path); !strings.Contains(cacheStatus(r), "fwd=uri-miss") {
		t.Fatalf("the next anonymous read: %q, want a miss (nothing stored by the authorized one)", cacheStatus(r))
	}
}

// A field name with a space is not a token (RFC 9110 §5.1): 400, and the
// origin never sees it.
func TestFieldNameWithSpaceIsRefused(t *testing.T) {
	o := newScripted(t)
	o.handle("/protect/space", cacheable(`{"id":1}`))
	p := startProxy(t, testConfig(o.url()))
	r := rawGet(t, p, "/protect/space", "Foo Bar: x\r\n")
	if r.StatusCode() != 400 || !strings.Contains(string(r.Body()), `"code":"bad_request"`) {
		t.Fatalf("field name with a space: %d %s, want the JSON 400", r.StatusCode(), r.Body())
	}
	if n := o.hits("/protect/space"); n != 0 {
		t.Fatalf("origin asked %d times", n)
	}
}

// A cold key whose answer names groups of known versions is filled from a
// replica (no Edgecache-Fresh), checked against those versions: only the
// first fill, which finds its group unknown, asks the primary.
func TestColdKeysAreFilledFromReplicas(t *testing.T) {
	o := newScripted(t)
	var fresh, all atomic.Int64
	group := "post/protect-cold-" + runID() + "=1"
	o.handle("/protect/cold", func(ctx *fasthttp.RequestCtx) {
		all.Add(1)
		if string(ctx.Request.Header.Peek(hdrFresh)) == "1" {
			fresh.Add(1)
		}
		ctx.Response.Header.Set("Edgecache-Groups", group)
		cacheable(`{"id":1}`)(ctx)
	})
	p := startProxy(t, testConfig(o.url()))
	for i := range 20 {
		r := get(t, p, "/protect/cold?run="+group+"&i="+strconv.Itoa(i))
		if !strings.Contains(cacheStatus(r), "stored") {
			t.Fatalf("read %d: %q", i, cacheStatus(r))
		}
	}
	if fresh.Load() > 1 {
		t.Fatalf("%d of %d origin requests asked for the primary, want only the first fill's", fresh.Load(), all.Load())
	}
}

// With a replica stopped behind an acknowledged write, cold keys (list
// pages never read before) still show the write: their replica answers
// are checked against the group versions the write left, and fetched again
// from the primary.
func TestColdKeysOnALaggingReplicaSeeTheWrite(t *testing.T) {
	base := realStack(t)
	p := startProxy(t, testConfig(base))
	u := createUser(t, p)
	post := createPost(t, p, u, "before lag")
	ctx := context.Background()
	if err := dbReplica.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	defer dbReplica.Exec(ctx, "START SLAVE SQL_THREAD")
	v2 := updatePost(t, p, u, post.ID, "during lag")
	for limit := 1; limit <= 10; limit++ {
		var l apiList
		r := get(t, p, fmt.Sprintf("/v1/users/%d/posts?limit=%d", u.ID, limit))
		decodeInto(t, r.Body(), &l)
		if len(l.Posts) != 1 || l.Posts[0].Version != v2.Version {
			t.Fatalf("STALE list page limit=%d: %s (Cache-Status %q), want version %d", limit, r.Body(), cacheStatus(r), v2.Version)
		}
	}
}

// A multipart form is a body like any other: over the limit it is refused
// unread (fasthttp's own multipart pre-parse would read it whatever its
// length), under it forwarded byte for byte.
func TestMultipartBodyIsNotParsed(t *testing.T) {
	o := newScripted(t)
	var got []byte
	o.handle("/protect/form", func(ctx *fasthttp.RequestCtx) { got = append([]byte(nil), ctx.PostBody()...) })
	cfg := testConfig(o.url())
	cfg.MaxBodyBytes = 1024
	p := startProxy(t, cfg)
	c := dial(t, p)
	io.WriteString(c, "POST /protect/form HTTP/1.1\r\nHost: edge.test\r\nContent-Type: multipart/form-data; boundary=b\r\n"+
		"Content-Length: 1048576\r\n\r\n--b\r\n")
	resp := new(fasthttp.Response)
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 413 || !strings.Contains(string(resp.Body()), `"code":"body_too_large"`) {
		t.Fatalf("multipart body over the limit: %d %s, want the JSON 413", resp.StatusCode(), resp.Body())
	}
	form := "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n"
	c = dial(t, p)
	io.WriteString(c, "POST /protect/form HTTP/1.1\r\nHost: edge.test\r\nContent-Type: multipart/form-data; boundary=b\r\n"+
		"Content-Length: "+strconv.Itoa(len(form))+"\r\n\r\n"+form)
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || string(got) != form {
		t.Fatalf("multipart body under the limit: %d, origin got %q", resp.StatusCode(), got)
	}
}
