package proxy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestQueryRulesKeepWhatTheOriginReads(t *testing.T) {
	rules, err := parseQueryAllow(defaultConfig().QueryAllow)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, query, want string }{
		{"/v1/posts/7", "x=1&y=2", ""},
		{"/v1/users/7", "limit=5", ""},
		{"/v1/users/7/posts", "limit=5&junk=1&before=9", "limit=5&before=9"},
		{"/v1/users/7/posts", "lim%69t=5&limit", "limit"},
		{"/v1/users/7/posts/x", "limit=5", ""},
		{"/other", "x=1", "x=1"}, // no rule: everything kept
	} {
		if got := string(rules.keep(nil, []byte(tc.path), []byte(tc.query))); got != tc.want {
			t.Errorf("%s?%s: kept %q, want %q", tc.path, tc.query, got, tc.want)
		}
	}
	for _, bad := range []string{"v1/=x", "/v1/", "/v1/=a&b"} {
		if _, err := parseQueryAllow(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Random query strings on a post share its entry: the origin reads none,
// so they are dropped from the key and from the request it gets.
func TestRandomQueryStringsShareAnEntry(t *testing.T) {
	base := realStack(t)
	p := startProxy(t, testConfig(base))
	u := createUser(t, p)
	post := createPost(t, p, u, "one post")
	misses := 0
	for range 200 {
		r := get(t, p, fmt.Sprintf("/v1/posts/%d?%x=%x&utm=%d", post.ID, rand.Uint64(), rand.Uint64(), rand.IntN(1000)))
		if r.StatusCode() != 200 || !strings.Contains(string(r.Body()), "one post") {
			t.Fatalf("%d %s", r.StatusCode(), r.Body())
		}
		if !strings.Contains(cacheStatus(r), "hit") {
			misses++
		}
	}
	t.Logf("%d of 200 reads went to the origin", misses)
	if misses > 10 {
		t.Fatalf("%d of 200 reads went to the origin", misses)
	}
	// Parameter order does not make another key.
	list := fmt.Sprintf("/v1/users/%d/posts?", u.ID)
	get(t, p, list+"limit=2&before=1000000")
	if r := get(t, p, list+"before=1000000&limit=2&junk=1"); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("reordered list query: %q, want a hit", cacheStatus(r))
	}
}

// What reaches the origin is what the key names.
func TestDroppedParametersAreNotForwarded(t *testing.T) {
	o := newScripted(t)
	var saw []string
	path := fmt.Sprintf("/v1/users/%d/posts", rand.Int64())
	o.handle(path, func(ctx *fasthttp.RequestCtx) {
		saw = append(saw, string(ctx.QueryArgs().QueryString()))
		cacheable(`[]`)(ctx)
	})
	p := startProxy(t, testConfig(o.url()))
	get(t, p, path+"?zzz=1&limit=2&aaa=2")
	if len(saw) != 1 || saw[0] != "limit=2" {
		t.Fatalf("origin saw queries %q, want [limit=2]", saw)
	}
}
