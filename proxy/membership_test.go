package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"edgecache/deploy/localstack"
)

// Issue 17's proof, as a test: 40 posts filled with memcached nodes {A, B};
// the proxy restarted with {A} alone and every post updated (acknowledged,
// not pending); the proxy restarted with {A, B}. Node B still holds the
// entries and group values of before the updates, which no write moved:
// it must be flushed before it is used again (store/membership.go), so no
// post is served at version 1.
func TestNodeOutAndBackInServesNothingStale(t *testing.T) {
	base := realStack(t)
	var nodes []string
	for range 2 {
		m, err := localstack.StartMemcached(context.Background(), 16)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Stop()
		nodes = append(nodes, m.Addr)
	}
	proxyOver := func(memcached ...string) *Proxy {
		cfg := testConfig(base)
		cfg.Memcached = memcached
		return startProxy(t, cfg)
	}
	stop := func(p *Proxy) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	}

	both := proxyOver(nodes...)
	u := createUser(t, both)
	var posts []apiPost
	for i := range 40 {
		posts = append(posts, createPost(t, both, u, fmt.Sprint("post ", i, " v1")))
	}
	for _, p := range posts {
		get(t, both, fmt.Sprintf("/v1/posts/%d", p.ID)) // filled at {A, B}
	}
	stop(both)

	alone := proxyOver(nodes[0])
	for i, p := range posts {
		acknowledged(t, do(t, alone, "PUT", fmt.Sprintf("/v1/posts/%d", p.ID), map[string]string{"Authorization": "Bearer " + u.Token},
			fmt.Sprintf(`{"body":"post %d v2"}`, i)))
	}
	stop(alone)

	again := proxyOver(nodes...)
	stale := 0
	for i, p := range posts {
		r := get(t, again, fmt.Sprintf("/v1/posts/%d", p.ID))
		var got apiPost
		decodeInto(t, r.Body(), &got)
		if got.Body != fmt.Sprintf("post %d v2", i) {
			stale++
			t.Errorf("post %d: %q (Cache-Status %q) after its update was acknowledged", p.ID, got.Body, cacheStatus(r))
		}
	}
	t.Logf("%d of %d posts stale", stale, len(posts))
}
