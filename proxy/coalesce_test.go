package proxy

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/valyala/fasthttp"

	"edgecache/proxy/store"
)

// N concurrent misses for one key, spread over two proxy instances, cause
// exactly one origin request: one fill per process (singleflight) and one
// per fleet (the memcached lease). The origin holds its answer until every
// request is known to be waiting.
func TestConcurrentMissesAcrossTwoProxiesMakeOneOriginRequest(t *testing.T) {
	const n = 10
	o := newScripted(t)
	arrived, release := make(chan struct{}, n), make(chan struct{})
	o.handle("/coalesce/hot", func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
		cacheable(`{"hot":true}`)(ctx)
	})
	p1 := startProxy(t, testConfig(o.url()))
	p2 := startProxy(t, testConfig(o.url()))
	var mu sync.Mutex
	waits := map[string]int{}
	changed := make(chan struct{}, 4*n)
	hook := &testHooks{onWait: func(scope string) {
		mu.Lock()
		waits[scope]++
		mu.Unlock()
		changed <- struct{}{}
	}}
	p1.hooks.Store(hook)
	p2.hooks.Store(hook)

	var wg sync.WaitGroup
	results := make(chan *fasthttp.Response, n)
	for i := 0; i < n; i++ {
		p := p1
		if i%2 == 1 {
			p = p2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- get(t, p, "/coalesce/hot")
		}()
	}
	// Release the origin only when all n requests joined a flight and the
	// losing proxy's fill waits on the winner's lease.
	guard := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case <-changed:
		case <-guard:
			mu.Lock()
			t.Fatalf("requests never all waited: %v, origin requests %d", waits, o.hits("/coalesce/hot"))
		}
		mu.Lock()
		ready = waits["process"] == n && waits["fleet"] == 1
		mu.Unlock()
	}
	<-arrived
	close(release)
	wg.Wait()
	close(results)
	collapsed := 0
	for r := range results {
		if r.StatusCode() != 200 || string(r.Body()) != `{"hot":true}` {
			t.Fatalf("answer %d %q", r.StatusCode(), r.Body())
		}
		if strings.Contains(cacheStatus(r), "collapsed") {
			collapsed++
		}
	}
	if got := o.hits("/coalesce/hot"); got != 1 {
		t.Fatalf("origin saw %d requests for %d concurrent misses, want 1", got, n)
	}
	if collapsed != n-1 {
		t.Fatalf("%d answers say collapsed, want %d", collapsed, n-1)
	}
}

// RFC 9111 §3.5: a request with Authorization fills alone. A request
// without it, for the same URL while the first is in flight, neither
// waits for it (in this process or through the fleet's lease) nor gets its
// answer, which nothing allows a shared cache to reuse: it goes to the
// origin and gets its own.
func TestAuthorizedFillIsNeverShared(t *testing.T) {
	o := newScripted(t)
	authArrived, release := make(chan struct{}), make(chan struct{})
	o.handle("/coalesce/auth", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		if a := ctx.Request.Header.Peek("Authorization"); len(a) > 0 {
			close(authArrived)
			<-release
			ctx.SetBodyString("for " + string(a))
			return
		}
		ctx.SetBodyString("for anyone")
	})
	p := startProxy(t, testConfig(o.url()))
	var mu sync.Mutex
	var waits []string
	p.hooks.Store(&testHooks{onWait: func(scope string) {
		mu.Lock()
		waits = append(waits, scope)
		mu.Unlock()
	}})
	authed := make(chan *fasthttp.Response, 1)
	go func() {
		authed <- do(t, p, "GET", "/coalesce/auth", map[string]string{"Authorization": "Bearer alice"}, "")
	}()
	<-authArrived
	r := get(t, p, "/coalesce/auth")
	close(release)
	a := <-authed
	if string(r.Body()) != "for anyone" || string(a.Body()) != "for Bearer alice" {
		t.Fatalf("anonymous got %q, Alice got %q", r.Body(), a.Body())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 1 || waits[0] != "process" {
		t.Fatalf("waits %q, want only the anonymous request's own flight", waits)
	}
}

// A fill lease nobody holds any more (its add reached a memcached that had
// stalled, after the proxy gave up on it; or its holder died): the first
// request that waits on it takes it over once it has not beaten for
// orphanAfter beats, instead of waiting out PROXY_COALESCE_WAIT.
func TestOrphanedFillLeaseIsTakenOver(t *testing.T) {
	o := newScripted(t)
	o.handle("/coalesce/orphan", cacheable(`{"orphan":true}`))
	cfg := testConfig(o.url())
	cfg.CoalesceWait = 3 * time.Second
	p := startProxy(t, cfg)
	if err := memcache.New(memcachedAddr()).Set(&memcache.Item{Key: store.LeaseKey("http://edge.test/coalesce/orphan"),
		Value: []byte("1"), Expiration: 60}); err != nil {
		t.Fatal(err)
	}
	r := get(t, p, "/coalesce/orphan")
	if r.StatusCode() != 200 || string(r.Body()) != `{"orphan":true}` {
		t.Fatalf("answer %d %q", r.StatusCode(), r.Body())
	}
	if got, timeouts := p.m.leaseTakeovers.Get(), p.m.coalesceTimeout.Get(); got != 1 || timeouts != 0 {
		t.Fatalf("%d takeovers and %d coalescing timeouts, want 1 and 0", got, timeouts)
	}
}

const slowPoll = 100 * time.Millisecond

// A live holder whose fetch takes many beats is not taken over: it beats
// its lease, and the waiter keeps waiting for its entry.
func TestSlowFillBeatsItsLease(t *testing.T) {
	o := newScripted(t)
	arrived := make(chan struct{}, 2)
	o.handle("/coalesce/slow", func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		time.Sleep(4 * orphanAfter * slowPoll) // four times what a waiter lets an unbeaten lease live: the time a fetch takes is what is tested
		cacheable(`{"slow":true}`)(ctx)
	})
	cfg := testConfig(o.url())
	cfg.LeasePoll = slowPoll / 10 // a beat every slowPoll
	p1, p2 := startProxy(t, cfg), startProxy(t, cfg)
	first := make(chan *fasthttp.Response, 1)
	go func() { first <- get(t, p1, "/coalesce/slow") }()
	<-arrived // p1 holds the lease and fetches
	r := get(t, p2, "/coalesce/slow")
	if r.StatusCode() != 200 || !strings.Contains(cacheStatus(r), "collapsed") {
		t.Fatalf("waiter's answer %d, Cache-Status %q: want the holder's entry", r.StatusCode(), cacheStatus(r))
	}
	<-first
	if got := o.hits("/coalesce/slow"); got != 1 || p2.m.leaseTakeovers.Get() != 0 {
		t.Fatalf("origin saw %d requests, %d takeovers: a live holder was taken over", got, p2.m.leaseTakeovers.Get())
	}
}
