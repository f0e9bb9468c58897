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
	lagBefore := p1.m.lagRefetch.Get()
	origin := 0
	for range 100 {
		r := get(t, p1, fmt.Sprintf("/v1/posts/%d", next))
		if r.StatusCode() != 404 {
			t.Fatalf("missing post: %d %s", r.StatusCode(), r.Body())
		}
		if !strings.Contains(cacheStatus(r), "hit") {
			origin++
		}
	}
	origin += int(p1.m.lagRefetch.Get() - lagBefore)
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
	waitLogApplied(t, durableInvalidator(t))
	for i, want := range []string{"fwd=", "hit"} {
		r := get(t, p2, fmt.Sprintf("/v1/posts/%d", next))
		if r.StatusCode() != 404 || !strings.Contains(cacheStatus(r), want) {
			t.Fatalf("read %d of the deleted post: %d %q, want 404 and %q", i, r.StatusCode(), cacheStatus(r), want)
		}
	}
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
