package proxy

import (
	"strconv"
	"strings"
	"testing"

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
