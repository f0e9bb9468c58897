package proxy

import (
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkLongKeyMisses is what 1,000 misses of distinct long URLs leave
// on the proxy's heap (after a GC), over a 4 MiB L1: the L1 and the group
// memory must hold their bounds whatever the keys weigh. "15KB" URLs are
// above PROXY_MAX_KEY_BYTES, "7KB" ones below it. Run with -benchtime=1x.
func BenchmarkLongKeyMisses(b *testing.B) {
	for _, size := range []int{15 << 10, 7 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KB", func(b *testing.B) {
			o := newScripted(b)
			o.handle("/mem/long", func(ctx *fasthttp.RequestCtx) {
				ctx.Response.Header.Set("Edgecache-Groups", "post/1=1")
				cacheable(`{"id":1}`)(ctx)
			})
			cfg := testConfig(o.url())
			cfg.L1Bytes = 4 << 20
			p := startProxy(b, cfg)
			filler := strings.Repeat("x", size)
			run := strconv.Itoa(int(b.N)) + strconv.FormatInt(int64(size), 36)
			before := heapAlloc()
			for i := range 1000 {
				get(b, p, "/mem/long?run="+run+"&i="+strconv.Itoa(i)+"&pad="+filler)
			}
			b.ReportMetric(float64(heapAlloc()-before)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(p.l1.Len()), "l1-entries")
			runtime.KeepAlive(p)
		})
	}
}

func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkAnnouncedBodies is what 200 connections that announce 1 MiB
// POST bodies and send only the head leave on the proxy's heap a second
// later, with PROXY_MAX_BODY_BYTES at its default and at 1 MiB. Run with
// -benchtime=1x.
func BenchmarkAnnouncedBodies(b *testing.B) {
	for _, limit := range []int{0, 1 << 20} {
		name := "limit=default"
		if limit > 0 {
			name = "limit=1MiB"
		}
		b.Run(name, func(b *testing.B) {
			o := newScripted(b)
			cfg := testConfig(o.url())
			if limit > 0 {
				cfg.MaxBodyBytes = limit
			}
			p := startProxy(b, cfg)
			before := heapAlloc()
			for range 200 {
				c, err := net.Dial("tcp", p.Addr())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 1048576\r\n\r\n")
			}
			time.Sleep(time.Second) // the proxy reads the heads
			b.ReportMetric(float64(heapAlloc()-before)/(1<<20), "heap-MiB")
		})
	}
}

// BenchmarkOriginOverload: an origin serves 8 requests at a time, 5 ms
// each (1,600/s). 4 clients doing misses (distinct keys) for 1 s, then 64
// for 3 s: with the adaptive limit, and with it out of reach. It reports,
// for the 3 s of overload, the answered requests per second, their p50
// and p99, the 503s per second, and the limit at the end. Run with
// -benchtime=1x.
func BenchmarkOriginOverload(b *testing.B) {
	for _, adaptive := range []bool{true, false} {
		name := "adaptive"
		if !adaptive {
			name = "unlimited"
		}
		b.Run(name, func(b *testing.B) {
			o := newScripted(b)
			workers := make(chan struct{}, 8)
			o.handle("/overload", func(ctx *fasthttp.RequestCtx) {
				workers <- struct{}{}
				time.Sleep(5 * time.Millisecond)
				<-workers
				cacheable("x")(ctx)
			})
			cfg := testConfig(o.url())
			if !adaptive {
				cfg.OriginConcurrencyMin, cfg.OriginConcurrencyMax = 1<<20, 1<<20
			}
			p := startProxy(b, cfg)
			var seq atomic.Int64
			run := strconv.FormatInt(time.Now().UnixNano(), 36)
			load := func(clients int, d time.Duration) (ok []time.Duration, refused int) {
				var mu sync.Mutex
				var wg sync.WaitGroup
				end := time.Now().Add(d)
				for range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for time.Now().Before(end) {
							start := time.Now()
							r := get(b, p, "/overload?run="+run+"&i="+strconv.FormatInt(seq.Add(1), 36))
							took := time.Since(start)
							mu.Lock()
							if r.StatusCode() == 200 {
								ok = append(ok, took)
							} else {
								refused++
							}
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				return ok, refused
			}
			load(4, time.Second)
			ok, refused := load(64, 3*time.Second)
			slices.Sort(ok)
			limit, _ := p.origins.limit.current()
			b.ReportMetric(float64(len(ok))/3, "ok/s")
			b.ReportMetric(float64(ok[len(ok)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(ok[len(ok)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(refused)/3, "503/s")
			b.ReportMetric(limit, "limit")
		})
	}
}
