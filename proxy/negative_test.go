package proxy

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// A 404 of a post is stored briefly, named with the group its creation
// moves: reads of a missing post stop reaching the origin, and the post,
// once created (through another proxy), is served at once.
func TestMissingPostIsCachedUntilCreated(t *testing.T) {
	base := realStack(t)
	p1 := startProxy(t, testConfig(base))
	p2 := startProxy(t, testConfig(base))
	u := createUser(t, p1)
	last := createPost(t, p1, u, "the last one")
	next := last.ID + 1 // AUTO_INCREMENT: the next post created gets it
	lagBefore := p1.m.lagRefetch.Get() + p2.m.lagRefetch.Get()
	origin := 0
	for i := range 100 {
		r := get(t, []*Proxy{p1, p2}[i%2], fmt.Sprintf("/v1/posts/%d", next))
		if r.StatusCode() != 404 {
			t.Fatalf("missing post: %d %s", r.StatusCode(), r.Body())
		}
		if !strings.Contains(cacheStatus(r), "hit") {
			origin++
		}
	}
	origin += int(p1.m.lagRefetch.Get() + p2.m.lagRefetch.Get() - lagBefore)
	t.Logf("100 reads of a missing post: %d origin requests", origin)
	if origin > 3 {
		t.Fatalf("100 reads of a missing post made %d origin requests", origin)
	}
	created := createPost(t, p2, u, "created later")
	if created.ID != next {
		t.Fatalf("created post %d, want %d (another post was created meanwhile)", created.ID, next)
	}
	r := get(t, p1, fmt.Sprintf("/v1/posts/%d", next))
	if r.StatusCode() != 200 || !strings.Contains(string(r.Body()), "created later") {
		t.Fatalf("post read after its creation was acknowledged: %d %s (Cache-Status %q)", r.StatusCode(), r.Body(), cacheStatus(r))
	}

	// Deleted: its 404 is stored too, and served from the cache.
	del := do(t, p1, "DELETE", fmt.Sprintf("/v1/posts/%d", next), map[string]string{"Authorization": "Bearer " + u.Token}, "")
	if del.StatusCode() != 204 {
		t.Fatalf("delete: %d %s", del.StatusCode(), del.Body())
	}
	// The durable path moves the delete's groups too, shortly after: the
	// 404 must be stored after that, or that move invalidates it again.
	// p2 remembers the key's groups from its reads above (the delete took
	// the entry away), so its first fill has them in its snapshot and
	// stores the 404 itself, not a witness.
	waitLogApplied(t, durableInvalidator(t))
	for i, want := range []string{"fwd=", "hit"} {
		r := get(t, p2, fmt.Sprintf("/v1/posts/%d", next))
		if r.StatusCode() != 404 || !strings.Contains(cacheStatus(r), want) {
			t.Fatalf("read %d of the deleted post: %d %q, want 404 and %q", i, r.StatusCode(), cacheStatus(r), want)
		}
	}
}

// An id scan of missing posts costs the origin one request per id, not
// two: the first fill of a key whose 404 names a group it never read
// before answers from that one fetch (the primary's word) and stores a
// witness, instead of fetching again to store the 404 itself.
func TestMissingIDScanCostsOneOriginRequestPerID(t *testing.T) {
	base := realStack(t)
	p := startProxy(t, testConfig(base))
	u := createUser(t, p)
	first := createPost(t, p, u, "the last one").ID + 1000
	before := originRequests(p)
	const ids = 20
	for id := first; id < first+ids; id++ {
		r := get(t, p, fmt.Sprintf("/v1/posts/%d", id))
		if r.StatusCode() != 404 || !strings.Contains(cacheStatus(r), "detail=unchecked") {
			t.Fatalf("post %d: %d %q, want a 404 stored as a witness", id, r.StatusCode(), cacheStatus(r))
		}
	}
	if n := originRequests(p) - before; n != ids {
		t.Fatalf("a scan of %d missing ids made %d origin requests", ids, n)
	}
}

// originRequests is how many requests p sent its origins.
func originRequests(p *Proxy) uint64 {
	var n uint64
	for _, c := range p.m.originRequests {
		n += c.Get()
	}
	return n
}

// A fill that has the 404 in hand while the post's creation is
// acknowledged through another proxy must not make anyone read the 404
// afterwards: the creation moved the group whose epoch the fill recorded
// before its fetch.
func TestMissingPostFillRacingItsCreationIsNeverServed(t *testing.T) {
	base := realStack(t)
	p1 := startProxy(t, testConfig(base))
	p2 := startProxy(t, testConfig(base))
	u := createUser(t, p1)
	next := createPost(t, p1, u, "the last one").ID + 1
	path := fmt.Sprintf("/v1/posts/%d", next)
	fetched, proceed := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	p1.hooks.Store(&testHooks{beforeStore: func(p string) {
		if p == path && armed.CompareAndSwap(true, false) {
			close(fetched)
			<-proceed
		}
	}})
	slow := make(chan int)
	go func() { slow <- get(t, p1, path).StatusCode() }()
	<-fetched
	if created := createPost(t, p2, u, "created during the fill"); created.ID != next {
		t.Fatalf("created post %d, want %d", created.ID, next)
	}
	close(proceed)
	<-slow // answered before the creation was: a 404 is right for it
	for _, p := range []*Proxy{p1, p2, p1} {
		if r := get(t, p, path); r.StatusCode() != 200 {
			t.Fatalf("read after the creation was acknowledged: %d (Cache-Status %q)", r.StatusCode(), cacheStatus(r))
		}
	}
}
