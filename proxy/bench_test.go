package proxy

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

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

// BenchmarkMiss is a cold miss of a 1 KB body with one origin group: the
// lookup, the fleet lease, the group snapshot, the origin fetch, the store.
// It reports the memcached operations per miss, the figure that sets a cold
// read's latency when memcached is a network hop away.
func BenchmarkMiss(b *testing.B) {
	o := newScripted(b)
	body := strings.Repeat("x", 1024)
	o.handle("/bench/miss", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Edgecache-Groups", "post/"+string(ctx.QueryArgs().Peek("i"))+"=1")
		cacheable(body)(ctx)
	})
	p := startProxy(b, testConfig(o.url()))
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	ops := func() (n uint64) {
		for _, op := range []string{"get", "set", "add", "cas", "delete"} {
			n += p.store.Ops(op)
		}
		return n
	}
	b.ReportAllocs()
	before := ops()
	b.ResetTimer()
	for i := range b.N {
		r := get(b, p, "/bench/miss?run="+run+"&i="+strconv.Itoa(i))
		if !strings.Contains(cacheStatus(r), "stored") {
			b.Fatalf("not a stored miss: %q", cacheStatus(r))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(ops()-before)/float64(b.N), "memcached-ops/op")
}
