package proxy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// The client listener serves the API only: the origin's /metrics,
// /healthz and /readyz (and anything else outside PROXY_PUBLIC_PATHS) get
// the proxy's own JSON 404, and the origin never sees the request.
func TestPublicListenerServesOnlyTheAPI(t *testing.T) {
	o := newScripted(t)
	for _, path := range []string{"/metrics", "/readyz", "/debug/pprof/", "/v1x", "/metrics/v1/"} {
		o.handle(path, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("internal") })
	}
	o.handle("/v1/public-test/1", cacheable("post"))
	cfg := testConfig(o.url())
	cfg.PublicPaths = defaultConfig().PublicPaths
	if len(cfg.PublicPaths) != 1 || cfg.PublicPaths[0] != "/v1/" {
		t.Fatalf("PROXY_PUBLIC_PATHS defaults to %q, want /v1/", cfg.PublicPaths)
	}
	p := startProxy(t, cfg)

	for _, req := range []struct{ method, path string }{
		{"GET", "/metrics"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/debug/pprof/"},
		{"HEAD", "/metrics"}, {"POST", "/metrics"}, {"GET", "/"}, {"GET", "/v1x"},
		{"GET", "/v1/../metrics"}, {"GET", "/v1/%2e%2e/metrics"}, {"GET", "/metrics/v1/"},
	} {
		r := do(t, p, req.method, req.path, nil, "")
		if r.StatusCode() != 404 {
			t.Errorf("%s %s: status %d, want 404", req.method, req.path, r.StatusCode())
			continue
		}
		if req.method == "HEAD" {
			continue
		}
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal(r.Body(), &body); err != nil || body.Error.Code != "not_found" ||
			string(r.Header.ContentType()) != "application/json" {
			t.Errorf("%s %s: %s %q, want the JSON error not_found", req.method, req.path, r.Header.ContentType(), r.Body())
		}
	}
	for _, path := range []string{"/metrics", "/readyz", "/debug/pprof/", "/v1x", "/metrics/v1/"} {
		if n := o.hits(path); n != 0 {
			t.Errorf("the origin got %d requests for %s", n, path)
		}
	}
	// The API is still proxied and cached.
	if r := get(t, p, "/v1/public-test/1"); r.StatusCode() != 200 || string(r.Body()) != "post" {
		t.Fatalf("GET /v1/public-test/1: %d %q", r.StatusCode(), r.Body())
	}
	if r := get(t, p, "/v1/public-test/1"); !strings.Contains(cacheStatus(r), "hit") {
		t.Errorf("second GET /v1/public-test/1 not a hit: %s", cacheStatus(r))
	}
}
