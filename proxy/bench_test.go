package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHit is a hit of a 1 KB body through the whole handler: recv,
// hash, lookup, validate, deliver. "l1" finds the process's copy and reads
// only the group versions (batched across the parallel requests); "l2" has
// L1 off: one GetMulti of entry and versions, and a decode, per request.
// The client connection is left out (compare.sh measures that with wrk).
func BenchmarkHit(b *testing.B) {
	b.Run("l1", func(b *testing.B) { benchmarkHit(b, 64<<20) })
	b.Run("l2", func(b *testing.B) { benchmarkHit(b, 0) })
}

func benchmarkHit(b *testing.B, l1Bytes int64) {
	o := newScripted(b)
	body := strings.Repeat("x", 1024)
	o.handle("/bench/hit", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Edgecache-Groups", "post/1=1")
		cacheable(body)(ctx)
	})
	cfg := testConfig(o.url())
	cfg.L1Bytes = l1Bytes
	p := startProxy(b, cfg)
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
