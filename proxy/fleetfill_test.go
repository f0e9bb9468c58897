package proxy

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// A cold key read by many clients at once over a fleet is fetched from the
// origin exactly once: requests that looked it up before the first fill
// stored it, and only then reached for the fleet's lease after that fill
// gave it back, must find the stored entry instead of fetching again.
// Each trial is a new key, read by 64 concurrent GETs spread over 8
// proxies sharing one memcached. The key's group is known beforehand (as a
// post's is once it was written or read under another URL), so a replica's
// answer is checked against its version and not fetched again from the
// primary.
func TestColdKeyIsFetchedOnceAcrossTheFleet(t *testing.T) {
	const (
		proxies = 8
		readers = 64
		trials  = 20
	)
	o := newScripted(t)
	fleet := make([]*Proxy, proxies)
	for i := range fleet {
		fleet[i] = startProxy(t, testConfig(o.url()))
	}
	run := rand.Uint64()
	for trial := range trials {
		path := fmt.Sprintf("/fleetfill/%x/post/%d", run, trial)
		group := fmt.Sprintf("post/fleetfill-%x-%d=1", run, trial)
		answer := func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("Edgecache-Groups", group)
			cacheable(`{"id":1,"version":1}`)(ctx)
		}
		o.handle(path+"/other", answer)
		o.handle(path, answer)
		if r := get(t, fleet[0], path+"/other"); r.StatusCode() != 200 {
			t.Fatalf("%s/other: %d", path, r.StatusCode())
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range readers {
			wg.Go(func() {
				<-start
				r := get(t, fleet[i%proxies], path)
				if r.StatusCode() != 200 || string(r.Body()) != `{"id":1,"version":1}` {
					t.Errorf("%s: %d %q", path, r.StatusCode(), r.Body())
				}
			})
		}
		close(start)
		wg.Wait()
		if n := o.hits(path); n != 1 {
			t.Errorf("trial %d: %d concurrent GETs over %d proxies made %d origin requests, want 1", trial, readers, proxies, n)
		}
	}
}
