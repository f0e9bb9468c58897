package proxy

import (
	"context"
	"net"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/deploy/localstack"
	"edgecache/proxy/store"
)

// BenchmarkHit is a hit of a 1 KB body through the whole handler: recv,
// hash, lookup, validate, deliver. "l1" finds the process's copy while the
// proxy holds its invalidation lease: no memcached round trip at all;
// "l1-checked" has leases off: L1 reads the group versions (batched across
// the parallel requests); "l2" has L1 off: one GetMulti of entry and
// versions, and a decode, per request. The client connection is left out
// (compare.sh measures that with wrk).
func BenchmarkHit(b *testing.B) {
	b.Run("l1", func(b *testing.B) { benchmarkHit(b, hitProxy(b, 64<<20, true)) })
	b.Run("l1-checked", func(b *testing.B) { benchmarkHit(b, hitProxy(b, 64<<20, false)) })
	b.Run("l2", func(b *testing.B) { benchmarkHit(b, hitProxy(b, 0, false)) })
}

// hitProxy is a proxy with /bench/hit cached (in L1 and, with leases,
// served from it without a check).
func hitProxy(b testing.TB, l1Bytes int64, leases bool) *Proxy {
	o := newScripted(b)
	body := strings.Repeat("x", 1024)
	o.handle("/bench/hit", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Edgecache-Groups", "post/1=1")
		cacheable(body)(ctx)
	})
	cfg := testConfig(o.url())
	if leases {
		cfg = leaseConfig(leaseNode(b), o.url())
	}
	cfg.L1Bytes = l1Bytes
	// Every hit draws whether it is checked, as in production, and none
	// is: the cost of a hit that is not sampled.
	cfg.ConsistencySample = 1e-12
	p := startProxy(b, cfg)
	get(b, p, "/bench/hit")
	if r := get(b, p, "/bench/hit"); !strings.Contains(cacheStatus(r), "hit") {
		b.Fatalf("not a hit: %q", cacheStatus(r))
	}
	if leases {
		warmL1(b, p, "/bench/hit")
	}
	return p
}

func benchmarkHit(b *testing.B, p *Proxy) {
	var req fasthttp.Request
	req.SetRequestURI("/bench/hit")
	req.Header.SetHost("edge.test")
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	handler := p.server.Handler
	ops := memcachedOps(p)
	b.ReportAllocs()
	b.SetParallelism(8) // requests in flight per CPU, as a loaded server has
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Init(&req, addr, nil)
			ctx.Response.Reset() // as the server does between requests: Init leaves the last answer
			handler(&ctx)
			if len(ctx.Response.Body()) != 1024 {
				b.Fatalf("body %d bytes", len(ctx.Response.Body()))
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(memcachedOps(p)-ops)/float64(b.N), "memcached-ops/op")
	if misses := p.m.requests[outcomeMiss].Get(); misses > 1 {
		b.Fatalf("misses during the benchmark: %d", misses)
	}
}

// BenchmarkMiss is one miss at a time of a 1 KB body through the whole
// handler over real memcached: the lookup, the fleet lease, the group
// snapshot, the origin fetch, the groups, the store. The origin is a child
// process (TestOriginProcess), so the process's CPU time is the proxy's
// alone: proxy-cpu-us/op is that (user and system, getrusage), which a
// wall-clock ns/op hides behind memcached's and the origin's latency.
// memcached-ops/op counts round trips (one per operation, a GetMulti to one
// node being one). Each answer names three groups, as a post's does (the
// post, its author, the author's list).
//   - "invalidated": the key's entry was stored and a write moved its post
//     group since, the miss a write causes (most misses of the 100:1 mix);
//     this proxy's L1 copy is gone, as a lease holder's is once told.
//   - "cold": a key never filled, whose groups exist (other keys made them).
//
// One miss at a time, the process is idle most of the time, and its CPU
// time counts the scheduler's spinning between round trips as much as the
// work; "parallel" keeps 16 misses in flight, so that proxy-cpu-us/op is
// what a miss costs a busy proxy (their lookups share round trips, as under
// load).
func BenchmarkMiss(b *testing.B) {
	o := startOriginProcess(b)
	b.Run("invalidated", func(b *testing.B) { benchmarkMiss(b, o, true, false) })
	b.Run("cold", func(b *testing.B) { benchmarkMiss(b, o, false, false) })
	b.Run("invalidated-parallel", func(b *testing.B) { benchmarkMiss(b, o, true, true) })
	b.Run("cold-parallel", func(b *testing.B) { benchmarkMiss(b, o, false, true) })
}

func benchmarkMiss(b *testing.B, o *originProcess, invalidated, parallel bool) {
	p := startProxy(b, testConfig(o.url()))
	st := memcachedOf(p)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	reqs := make([]fasthttp.Request, b.N)
	posts := make([]string, b.N)
	for i := range reqs {
		posts[i] = "post/" + run + "-" + strconv.Itoa(i)
		user := "user/" + run + "-" + strconv.Itoa(i%100)
		reqs[i].SetRequestURI("/bench/miss?bytes=1024&groups=" + posts[i] + "=1%20" + user + "=1%20" + user + "/posts=1")
		reqs[i].Header.SetHost("edge.test")
		if invalidated {
			serveMiss(b, p, &reqs[i])
			if err := st.Move(posts[i], 0); err != nil {
				b.Fatal(err)
			}
			p.l1.Remove("http://edge.test" + string(reqs[i].URI().RequestURI()))
			continue
		}
		for _, g := range []string{posts[i], user, user + "/posts"} {
			if _, _, err := st.Ensure(store.GroupKey(g), 1); err != nil {
				b.Fatal(err)
			}
		}
	}
	var before, after syscall.Rusage
	ops := memcachedOps(p)
	b.ReportAllocs()
	b.ResetTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	// Labelled so that a profile (-cpuprofile) can leave the set-up's
	// fills out: pprof -tagfocus phase=miss.
	pprof.Do(context.Background(), pprof.Labels("phase", "miss"), func(context.Context) {
		if !parallel {
			for i := range reqs {
				serveMiss(b, p, &reqs[i])
			}
			return
		}
		var next atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serveMiss(b, p, &reqs[next.Add(1)-1])
			}
		})
	})
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	b.StopTimer()
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "proxy-cpu-us/op")
	b.ReportMetric(float64(memcachedOps(p)-ops)/float64(b.N), "memcached-ops/op")
}

// serveMiss runs req through p's handler and fails unless the answer was
// fetched and stored.
func serveMiss(b *testing.B, p *Proxy, req *fasthttp.Request) {
	var ctx fasthttp.RequestCtx
	ctx.Init(req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, nil)
	p.server.Handler(&ctx)
	if cs := string(ctx.Response.Header.Peek("Cache-Status")); !strings.Contains(cs, "fwd=") || !strings.Contains(cs, "stored") ||
		len(ctx.Response.Body()) != 1024 {
		b.Fatalf("not a stored miss: %q, %d bytes", cs, len(ctx.Response.Body()))
	}
}

// BenchmarkWriteWithLeaseHolders is a write through one proxy while n
// proxies (the writer among them) hold invalidation leases, with the
// default lease settings (PROXY_LEASE_DURATION 1s, PROXY_PEER_TIMEOUT
// 200ms): the write moves its groups, tells every holder and waits for
// their acknowledgements. "unreachable" adds a holder whose peer listener
// is frozen (a paused relay in front of it) and whose renewals are
// blocked: the write revokes it and waits out its lease, until the other
// holders collect its entry (three lease durations after it stopped
// changing). It reports p50 and p99 of the write's duration.
func BenchmarkWriteWithLeaseHolders(b *testing.B) {
	b.Run("leases-off", func(b *testing.B) { benchmarkWrite(b, 0, false) })
	for _, n := range []int{1, 3, 6} {
		b.Run("holders="+strconv.Itoa(n), func(b *testing.B) { benchmarkWrite(b, n, false) })
	}
	b.Run("holders=6+unreachable", func(b *testing.B) { benchmarkWrite(b, 6, true) })
}

func benchmarkWrite(b *testing.B, holders int, unreachable bool) {
	o := newScripted(b)
	o.handle("/bench/write", func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsGet() {
			ctx.Response.Header.Set("Edgecache-Groups", "post/w=1")
			return
		}
		cacheable("x")(ctx)
	})
	node := leaseNode(b)
	cfg := leaseConfig(node, o.url())
	cfg.LeaseDuration, cfg.PeerTimeout = time.Second, 200*time.Millisecond
	var ps []*Proxy
	for range holders {
		ps = append(ps, startProxy(b, cfg))
	}
	if holders == 0 { // today's proxy: no lease, L1 hits checked in memcached
		off := cfg
		off.PeerSecret = ""
		ps = append(ps, startProxy(b, off))
	}
	if unreachable {
		rl, err := localstack.StartRelay("127.0.0.1:1")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(rl.Kill)
		c := cfg
		c.PeerAdvertise = rl.Addr()
		frozen := startProxy(b, c)
		rl.Retarget(frozen.AdminAddr())
		waitLease(b, frozen)
		resume := frozen.lease.Pause()
		b.Cleanup(resume)
		rl.Pause()
	}
	for _, p := range ps[:holders] {
		warmL1(b, p, "/bench/write")
	}
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		r := do(b, ps[0], "PUT", "/bench/write", nil, "{}")
		durations = append(durations, time.Since(start))
		if r.StatusCode() != 200 || len(r.Header.Peek(hdrInvalidation)) > 0 {
			b.Fatalf("PUT: %d %q", r.StatusCode(), r.Header.Peek(hdrInvalidation))
		}
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(durations[len(durations)-1].Microseconds())/1000, "max-ms")
}
