package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHit is an L2 (memcached) hit of a 1 KB body through the whole
// handler: recv, hash, one GetMulti (entry + group versions), decode,
// validate, deliver. The client connection is left out (see the wrk run in
// the report for that).
func BenchmarkHit(b *testing.B) {
	o := newScripted(b)
	body := strings.Repeat("x", 1024)
	o.handle("/bench/hit", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Edgecache-Groups", "post/1=1")
		cacheable(body)(ctx)
	})
	p := startProxy(b, testConfig(o.url()))
	get(b, p, "/bench/hit")
	if r := get(b, p, "/bench/hit"); !strings.Contains(cacheStatus(r), "hit") {
		b.Fatalf("not a hit: %q", cacheStatus(r))
	}
	var req fasthttp.Request
	req.SetRequestURI("/bench/hit")
	req.Header.SetHost("edge.test")
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	handler := p.server.Handler
	b.ReportAllocs()
	b.SetParallelism(8) // requests in flight per CPU, as a loaded server has
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Init(&req, addr, nil)
			handler(&ctx)
			if len(ctx.Response.Body()) != 1024 {
				b.Fatalf("body %d bytes", len(ctx.Response.Body()))
			}
		}
	})
	b.StopTimer()
	if o.hits("/bench/hit") > 1 {
		b.Fatalf("origin requests during the benchmark: %d", o.hits("/bench/hit"))
	}
}
