package proxy

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The limit follows the origins' latency (pure logic): it stays at its
// ceiling while latency is flat, falls when latency jumps above the
// baseline, never below its floor, and grows back once latency is
// normal again.
func TestConcurrencyLimitFollowsLatency(t *testing.T) {
	c := newConcurrencyLimit(4, 100)
	c.inflight = 80 // the limit is in use
	for range 20 {
		c.update(0.010)
	}
	if c.limit != 100 {
		t.Fatalf("flat latency: limit %.1f, want 100", c.limit)
	}
	for range limitPersist - 1 {
		c.update(0.100)
	}
	if c.limit != 100 {
		t.Fatalf("latency ×10 for %d windows: limit %.1f, want 100 (a stall, not yet a queue)", limitPersist-1, c.limit)
	}
	for range 30 {
		c.update(0.100)
	}
	if c.limit > 25 {
		t.Fatalf("latency ×10 for 3 s: limit %.1f, want it below 25", c.limit)
	}
	for range 200 {
		c.update(5)
	}
	if c.limit < 4 {
		t.Fatalf("limit %.1f below the floor 4", c.limit)
	}
	for range 100 {
		c.update(0.010)
	}
	if c.limit < 90 {
		t.Fatalf("latency back to normal: limit %.1f, want it back near 100", c.limit)
	}
}

// Beyond the limit nothing is sent: a miss gets a 503 with Retry-After at
// once, a stale entry is served instead where there is one; a write still
// goes through, in the writes' headroom, and beyond that gets the 503
// without a pending invalidation (it was not sent). Here the limit is fixed
// at 4 and four reads hang at the origin, then a write.
func TestBeyondTheOriginLimitStaleOrFast503(t *testing.T) {
	o := newScripted(t)
	arrived, release := make(chan struct{}, 8), make(chan struct{})
	o.handle("/limit/hang", func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
		cacheable("late")(ctx)
	})
	o.handle("/limit/stale", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=10") // stale when stored; servable when the origin cannot be asked
		ctx.Response.Header.Set("Age", "50")
		ctx.Response.Header.Set("ETag", `"1"`)
		ctx.SetBodyString("old")
	})
	o.handle("/limit/new", cacheable("new"))
	cfg := testConfig(o.url())
	cfg.OriginConcurrencyMin, cfg.OriginConcurrencyMax = 4, 4
	p := startProxy(t, cfg)
	run := "?run=" + runID()
	if r := get(t, p, "/limit/stale"+run); !strings.Contains(cacheStatus(r), "stored") {
		t.Fatalf("warm-up: %q", cacheStatus(r))
	}
	var hung sync.WaitGroup
	for i := range 4 {
		hung.Add(1)
		go func() { defer hung.Done(); get(t, p, "/limit/hang"+run+"&i="+strconv.Itoa(i)) }()
	}
	for range 4 {
		<-arrived
	}
	defer func() { close(release); hung.Wait() }()

	adds, deletes := memcachedOf(p).Ops("add"), memcachedOf(p).Ops("delete")
	r := get(t, p, "/limit/new"+run)
	if r.StatusCode() != 503 || jsonErrorCode(t, r) != "origin_overloaded" || string(r.Header.Peek("Retry-After")) != "1" {
		t.Fatalf("miss beyond the limit: %d %s %s", r.StatusCode(), r.Header.Header(), r.Body())
	}
	// Refused before its fill lease and groups are taken: a flood beyond
	// the limit costs memcached its lookups only.
	if a, d := memcachedOf(p).Ops("add")-adds, memcachedOf(p).Ops("delete")-deletes; a != 0 || d != 0 {
		t.Errorf("a miss refused by the limit made %d memcached adds and %d deletes (a lease taken and given back, groups created)", a, d)
	}
	r = get(t, p, "/limit/stale"+run)
	if r.StatusCode() != 200 || string(r.Body()) != "old" || !strings.Contains(cacheStatus(r), "detail=origin-overloaded") {
		t.Fatalf("stale entry beyond the limit: %d %q %q", r.StatusCode(), r.Body(), cacheStatus(r))
	}
	// The limit is full of reads, and a write still goes through: the
	// writes' headroom (a tenth of the limit, at least one).
	refused := make(chan int, 1)
	hung.Add(1)
	go func() {
		defer hung.Done()
		if r := do(t, p, "PUT", "/limit/hang"+run, nil, "{}"); r.StatusCode() == 503 {
			refused <- r.StatusCode()
		}
	}()
	select {
	case <-arrived:
	case <-refused:
		t.Fatal("a write refused while reads fill the limit")
	}
	w := do(t, p, "PUT", "/limit/new", nil, "{}")
	if w.StatusCode() != 503 || jsonErrorCode(t, w) != "origin_overloaded" || len(w.Header.Peek(hdrInvalidation)) > 0 {
		t.Fatalf("write beyond the limit and its headroom: %d %s %s", w.StatusCode(), w.Header.Header(), w.Body())
	}
	if n := o.hits("/limit/new"); n != 0 {
		t.Fatalf("origin asked %d times beyond the limit", n)
	}
}

// Slow answers while the proxy sends one request at a time (the origin's
// latency ×20 for a second, as when other processes stall the machine)
// leave the limit alone: it was not what let a queue build. A burst of
// four times the floor that follows reaches the origin in full; with the
// limit shrunk to its floor, three quarters of it got 503s.
func TestSlowAnswersAtLowConcurrencyKeepTheLimit(t *testing.T) {
	o := newScripted(t)
	var slow atomic.Bool
	o.handle("/limit/seq", func(ctx *fasthttp.RequestCtx) {
		if slow.Load() {
			time.Sleep(20 * time.Millisecond) // the stimulus: a slow origin
		}
		cacheable("x")(ctx)
	})
	const burst = 16
	arrived, release := make(chan struct{}, burst), make(chan struct{})
	o.handle("/limit/burst", func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
		cacheable("x")(ctx)
	})
	cfg := testConfig(o.url())
	cfg.OriginConcurrencyMin, cfg.OriginConcurrencyMax = burst/4, 4*burst
	p := startProxy(t, cfg)
	run := "?run=" + runID()
	n := 0
	seq := func() {
		n++
		if r := get(t, p, "/limit/seq"+run+"&n="+strconv.Itoa(n)); r.StatusCode() != 200 {
			t.Fatalf("sequential miss %d: %d %s", n, r.StatusCode(), r.Body())
		}
	}
	// Fast answers until the limit has a baseline, then slow ones for ten
	// of its windows.
	for baselineOf(p.origins.limit) == 0 {
		seq()
	}
	slow.Store(true)
	for until := time.Now().Add(10 * limitWindow); time.Now().Before(until); {
		seq()
	}
	limit, _ := p.origins.limit.current()

	statuses := make(chan int, burst)
	for i := range burst {
		go func() { statuses <- get(t, p, "/limit/burst"+run+"&i="+strconv.Itoa(i)).StatusCode() }()
	}
	refused := 0
	for got := 0; got+refused < burst; {
		select {
		case <-arrived:
			got++
		case s := <-statuses:
			refused++ // answered before its request could reach the origin
			t.Errorf("burst request answered %d without reaching the origin", s)
		}
	}
	close(release)
	if refused > 0 {
		t.Fatalf("%d of %d concurrent misses refused after sequential slow answers: the limit fell to %.0f", refused, burst, limit)
	}
	for range burst {
		if s := <-statuses; s != 200 {
			t.Errorf("burst request: %d", s)
		}
	}
}

// baselineOf is c's latency baseline, 0 before its first window.
func baselineOf(c *concurrencyLimit) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.baseline
}

// A flood of misses over far fewer connections than the limit's ceiling
// (64 clients, limit 1024) makes the origin slow: the limit must come down
// from what is in flight and refuse some of them, not wait for half of
// its ceiling to be in use, which these clients can never reach.
func TestFloodBelowTheCeilingBringsTheLimitDown(t *testing.T) {
	o := newScripted(t)
	var slow atomic.Bool
	o.handle("/limit/flood", func(ctx *fasthttp.RequestCtx) {
		if slow.Load() {
			time.Sleep(50 * time.Millisecond) // the stimulus: an origin overloaded
		}
		cacheable("x")(ctx)
	})
	cfg := testConfig(o.url())
	cfg.OriginConcurrencyMin, cfg.OriginConcurrencyMax = 4, 1024
	p := startProxy(t, cfg)
	run := "?run=" + runID()
	var n atomic.Int64
	miss := func() int {
		return get(t, p, "/limit/flood"+run+"&n="+strconv.FormatInt(n.Add(1), 10)).StatusCode()
	}
	for baselineOf(p.origins.limit) == 0 {
		if s := miss(); s != 200 {
			t.Fatalf("fast miss: %d", s)
		}
	}
	slow.Store(true)
	refused, stop := make(chan struct{}, 1), make(chan struct{})
	var clients sync.WaitGroup
	for range 64 {
		clients.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if miss() == fasthttp.StatusServiceUnavailable {
					select {
					case refused <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	select {
	case <-refused:
	case <-time.After(10 * time.Second): // a bound on failure, not a measure
		limit, inflight := p.origins.limit.current()
		t.Errorf("64 clients of an origin slowed fiftyfold for 10 s: none refused; limit %.0f, %d in flight", limit, inflight)
	}
	close(stop)
	clients.Wait()
}
