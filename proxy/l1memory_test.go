package proxy

import (
	"context"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/deploy/localstack"
	"edgecache/proxy/lru"
)

// postsOrigin answers like the origin's read endpoints, for any id: GET
// /v1/posts/{id} a post of bodyBytes of text, GET /v1/users/{id}/posts a
// page of 20 of them, each with the origin's caching fields and groups.
func postsOrigin(t testing.TB, bodyBytes int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("x", bodyBytes)
	post := func(id string) string {
		return `{"id":` + id + `,"user_id":17,"body":"` + text + `","version":3,"created_at":"2026-12-07T20:58:01.123456Z","updated_at":"2026-12-07T21:02:11.654321Z"}`
	}
	lastModified := time.Now().Add(-time.Hour).UTC().Format(time.RFC1123)
	srv := &fasthttp.Server{NoDefaultContentType: true, Handler: func(ctx *fasthttp.RequestCtx) {
		parts := strings.Split(string(ctx.Path()), "/") // "", v1, posts|users, id[, posts]
		if len(parts) < 4 {
			ctx.SetStatusCode(404)
			return
		}
		id := parts[3]
		h := &ctx.Response.Header
		h.Set("Cache-Control", "public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300")
		h.Set("ETag", `"3"`)
		h.Set("Last-Modified", lastModified)
		h.Set("Content-Type", "application/json")
		if parts[2] == "fields" { // a post with many more fields
			for i := range 24 {
				h.Set("X-Extra-"+strconv.Itoa(i), "value "+strconv.Itoa(i))
			}
		}
		if parts[2] != "users" {
			h.Set("Edgecache-Groups", "post/"+id+"=3")
			ctx.SetBodyString(post(id))
			return
		}
		h.Set("Edgecache-Groups", "user/"+id+"/posts=3")
		var b strings.Builder
		b.WriteString(`{"posts":[`)
		for i := range 20 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(post(strconv.Itoa(i)))
		}
		b.WriteString(`],"next":"/v1/users/` + id + `/posts?before=1&limit=20"}`)
		ctx.SetBodyString(b.String())
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// postsConfig is a proxy's configuration in front of postsOrigin, over a
// memcached of its own large enough that nothing these tests store is
// evicted (the package's shared one is 64 MB, and an evicted group makes
// an L1 copy's check a miss).
func postsConfig(t testing.TB, bodyBytes int) Config {
	node, err := localstack.StartMemcached(context.Background(), 256)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	cfg := testConfig(postsOrigin(t, bodyBytes))
	cfg.Memcached = []string{node.Addr}
	return cfg
}

// serveDirect sends one GET through p's handler, without a connection.
func serveDirect(t testing.TB, p *Proxy, path string) string {
	var req fasthttp.Request
	req.SetRequestURI(path)
	req.Header.SetHost("edge.test")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, nil)
	p.server.Handler(&ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("GET %s: status %d", path, ctx.Response.StatusCode())
	}
	return string(ctx.Response.Header.Peek("Cache-Status"))
}

// fill requests each path, and with hit once more: a hit, which makes the
// header the copy's next hits copy (wholeHeader).
func fill(t testing.TB, p *Proxy, paths []string, hit bool) {
	for _, path := range paths {
		if cs := serveDirect(t, p, path); !strings.Contains(cs, "stored") {
			t.Fatalf("GET %s: not stored: %q", path, cs)
		}
		if !hit {
			continue
		}
		if cs := serveDirect(t, p, path); !strings.Contains(cs, "hit") {
			t.Fatalf("GET %s again: not a hit: %q", path, cs)
		}
	}
}

// measureL1 fills paths, then measures what the L1 and the group memory
// hold by dropping them: the heap before less the heap after, against
// their weights. Measured so, what other tests leave to be collected (a
// stopped proxy's idle workers still hold it for a while) does not count.
func measureL1(t testing.TB, p *Proxy, paths []string, hit bool) (heap, counted int64) {
	fill(t, p, paths, hit)
	counted = p.l1.Weight() + p.groupsOf.weight()
	held := heapAlloc()
	p.l1 = lru.New[*l1Entry](p.cfg.L1Bytes)
	p.groupsOf.init(p.cfg.GroupMemoryBytes)
	return held - heapAlloc(), counted
}

// vmRSS is this process's resident set.
func vmRSS(t testing.TB) int64 { return procStatus(t, "VmRSS:") }

// procStatus is a size in /proc/self/status, in bytes.
func procStatus(t testing.TB, name string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", name)
	return 0
}

// postsPaths are n paths of the kind postsOrigin answers ("posts",
// "lists" or "fields"), with ids of this run's own: the test memcached is
// shared.
func postsPaths(kind string, n int) []string {
	base := int(time.Now().UnixNano()/1000) % 1e9 * 10
	paths := make([]string, n)
	for i := range paths {
		paths[i] = "/v1/" + kind + "/" + strconv.Itoa(base+i)
		if kind == "lists" {
			paths[i] = "/v1/users/" + strconv.Itoa(base+i) + "/posts"
		}
	}
	return paths
}

// Issue 21: PROXY_L1_BYTES and PROXY_GROUP_MEMORY_BYTES bound the heap
// only if an entry weighs what it costs. Entries like the origin's posts
// and lists, and posts with 24 fields more, each filled and hit: what the
// L1 and the group memory count is within 10% of the heap they hold; so is
// the group memory's alone. (An L1 copy decoded from a fill's encoding
// kept that whole buffer, 512 bytes of room included, and the weight
// counted neither it nor the fields' key/value pairs in the answer header:
// posts were counted 0.88 of their cost, the group memory 0.90.)
func TestL1CountsWhatEntriesCost(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		bodyBytes  int
		n          int
		l1Off      bool
	}{
		{"posts", "posts", 1024, 2000, false},
		{"short posts", "posts", 100, 2000, false},
		{"lists", "lists", 1024, 300, false},
		{"posts with more fields", "fields", 1024, 1000, false},
		{"posts, L1 off: the group memory alone", "posts", 1024, 3000, true},
	} {
		for _, hit := range []bool{false, true} {
			if hit && tc.l1Off {
				continue // the same as without
			}
			name := tc.name + ", filled"
			if hit {
				name += " and hit"
			}
			t.Run(name, func(t *testing.T) {
				cfg := postsConfig(t, tc.bodyBytes)
				if tc.l1Off {
					cfg.L1Bytes = 0
				}
				p := startProxy(t, cfg)
				heap, counted := measureL1(t, p, postsPaths(tc.kind, tc.n), hit)
				ratio := float64(counted) / float64(heap)
				t.Logf("%s: %d entries held %d B of heap, %d B each; counted %d B (%.3f)",
					name, tc.n, heap, heap/int64(tc.n), counted, ratio)
				if ratio < 0.9 || ratio > 1.1 {
					t.Errorf("%s: counted %d B for %d B of heap (%.2f), want within 10%%", name, counted, heap, ratio)
				}
			})
		}
	}
}

// BenchmarkL1Memory fills a proxy with PROXY_L1_BYTES at its default (64
// MiB) with a quarter more posts (1 KiB of text each) than it holds, each
// filled and hit, and reports the L1's weight and entries, the heap live
// after a collection, and the process's RSS, at the end and at its peak
// (VmHWM), against the bound. "memory-limit" keeps the soft memory limit
// of PROXY_MEMORY_LIMIT's default, as the proxy command does. The process holds the scripted origin
// and the client too. Run one at a time, with -benchtime=1x: RSS does not
// go down between runs.
func BenchmarkL1Memory(b *testing.B) {
	for _, limit := range []bool{false, true} {
		name := "gogc"
		if limit {
			name = "memory-limit"
		}
		b.Run(name, func(b *testing.B) {
			cfg := postsConfig(b, 1024)
			p := startProxy(b, cfg)
			if limit {
				stop := make(chan struct{})
				defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // -1: read it
				defer close(stop)
				go p.LimitMemory(stop)
			}
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			for range b.N {
				fill(b, p, postsPaths("posts", int(cfg.L1Bytes*5/4/3900)), true)
			}
			rss := vmRSS(b)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			live := heapAlloc()
			b.ReportMetric(float64(after.NumGC-before.NumGC), "gcs")
			b.ReportMetric(float64(after.PauseTotalNs-before.PauseTotalNs)/1e6, "gc-pause-ms")
			bound := float64(cfg.L1Bytes)
			b.ReportMetric(float64(p.l1.Len()), "entries")
			b.ReportMetric(float64(p.l1.Weight())/(1<<20), "l1-MiB")
			b.ReportMetric(float64(p.groupsOf.weight())/(1<<20), "groups-MiB")
			b.ReportMetric(float64(live)/(1<<20), "live-heap-MiB")
			b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
			b.ReportMetric(float64(procStatus(b, "VmHWM:"))/(1<<20), "peak-rss-MiB")
			b.ReportMetric(float64(rss)/bound, "rss/bound")
		})
	}
}

// PROXY_MEMORY_LIMIT: when set, the limit; when 0, half as much again as
// the L1's bound and what the group memory weighs, at least 64 MiB and
// 16 MiB above the live heap. The L1 counts at its bound while it is still
// filling: counted at its weight, the limit sat just above a live heap
// growing toward it, and the collector ran 21 times a second.
func TestMemoryLimitFollowsWhatTheProxyKeeps(t *testing.T) {
	cfg := postsConfig(t, 1024)
	cfg.MemoryLimit = 200 << 20
	if got := startProxy(t, cfg).MemoryLimit(300 << 20); got != 200<<20 {
		t.Errorf("PROXY_MEMORY_LIMIT=%d: limit %d", cfg.MemoryLimit, got)
	}
	cfg.MemoryLimit, cfg.L1Bytes = 0, 8<<20
	if got := startProxy(t, cfg).MemoryLimit(10 << 20); got != minMemoryLimit {
		t.Errorf("8 MiB L1: limit %d, want %d", got, minMemoryLimit)
	}
	cfg.L1Bytes = 128 << 20
	p := startProxy(t, cfg)
	if got := p.MemoryLimit(10 << 20); got != cfg.L1Bytes*3/2 {
		t.Errorf("empty 128 MiB L1: limit %d, want %d", got, cfg.L1Bytes*3/2)
	}
	fill(t, p, postsPaths("lists", 1700), true) // 27 KB each: 46 MB
	kept := cfg.L1Bytes + p.groupsOf.weight()
	if got := p.MemoryLimit(kept); got != kept*3/2 || p.groupsOf.weight() == 0 {
		t.Errorf("L1 bound and group memory weighing %d: limit %d, want %d", kept, got, kept*3/2)
	}
	if got := p.MemoryLimit(kept * 2); got != kept*2+minMemoryHeadroom {
		t.Errorf("live heap %d (connections, requests in flight): limit %d, want %d", kept*2, got, kept*2+minMemoryHeadroom)
	}
}
