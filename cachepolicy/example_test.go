package cachepolicy_test

import (
	"fmt"
	"time"

	"edgecache/cachepolicy"
)

// A miss is stored, then a later request is answered from the entry, then
// the entry goes stale and is served while it revalidates.
func Example() {
	sent := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	req := cachepolicy.NewRequest([]byte("GET"), nil, nil, false)
	resp := cachepolicy.Response{
		Status: 200,
		CacheControl: cachepolicy.ResponseDirectives(nil, nil,
			[]byte("public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300")),
		Date: []byte("Fri, 27 Nov 2026 12:00:00 GMT"),
		ETag: []byte(`"7"`),
	}
	ok, _ := cachepolicy.Storable(&req, &resp)
	meta := cachepolicy.NewMeta(&resp, sent, sent)
	stored, _ := meta.AppendBinary(nil)
	fmt.Println("storable:", ok, "lifetime:", meta.Lifetime)

	m, _, _ := cachepolicy.ReadMeta(stored)
	for _, after := range []time.Duration{10 * time.Second, 75 * time.Second, 120 * time.Second} {
		d := cachepolicy.Decide(&req, &m, sent.Add(after))
		s := cachepolicy.CacheStatus{Cache: "edgecache", Hit: d.Action == cachepolicy.Serve || d.Action == cachepolicy.ServeStale, Fwd: d.Fwd, TTL: d.TTL, HasTTL: true}
		fmt.Printf("after %v: %v, Age: %d, Cache-Status: %s\n", after, d.Action, d.Age, s.Append(nil))
	}

	key := cachepolicy.AppendKey(nil, []byte("http"), []byte("Example.com:80"), []byte("/v1/posts/7"), []byte("b=2&a=1"))
	fmt.Printf("key: %s\nmemcached key: %s\n", key, cachepolicy.AppendMemcacheKey(nil, "ec:", key))
	// Output:
	// storable: true lifetime: 60
	// after 10s: serve, Age: 10, Cache-Status: edgecache; hit; ttl=50
	// after 1m15s: serve-stale, Age: 75, Cache-Status: edgecache; hit; ttl=-15
	// after 2m0s: validate, Age: 120, Cache-Status: edgecache; fwd=stale; ttl=-60
	// key: http://example.com/v1/posts/7?a=1&b=2
	// memcached key: ec:aUD1FvgRshCteOny-Ls71Q
}
