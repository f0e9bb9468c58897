package proxy

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func cacheable(body string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300")
		ctx.Response.Header.Set("ETag", `"v1"`)
		ctx.Response.Header.Set("Content-Type", "application/json")
		ctx.SetBodyString(body)
	}
}

func TestRepeatedGetIsAHit(t *testing.T) {
	o := newScripted(t)
	o.handle("/hit/a", cacheable(`{"a":1}`))
	p := startProxy(t, testConfig(o.url()))

	r1 := get(t, p, "/hit/a")
	if r1.StatusCode() != 200 || string(r1.Body()) != `{"a":1}` {
		t.Fatalf("first GET: %d %q", r1.StatusCode(), r1.Body())
	}
	if cs := cacheStatus(r1); !strings.Contains(cs, "fwd=uri-miss") || !strings.Contains(cs, "stored") {
		t.Fatalf("first GET Cache-Status %q, want fwd=uri-miss and stored", cs)
	}
	r2 := get(t, p, "/hit/a")
	if string(r2.Body()) != `{"a":1}` || !strings.Contains(cacheStatus(r2), "hit") {
		t.Fatalf("second GET: %q, Cache-Status %q", r2.Body(), cacheStatus(r2))
	}
	if len(r2.Header.Peek("Age")) == 0 || string(r2.Header.Peek("Via")) == "" || len(r2.Header.Peek("Date")) == 0 {
		t.Fatalf("hit lacks Age, Via or Date: %s", r2.Header.String())
	}
	if n := o.hits("/hit/a"); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
	// A second proxy instance shares memcached: its first GET is a hit.
	p2 := startProxy(t, testConfig(o.url()))
	if r := get(t, p2, "/hit/a"); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("other instance: Cache-Status %q, want hit", cacheStatus(r))
	}
	if n := o.hits("/hit/a"); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
}
