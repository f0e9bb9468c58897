package proxy

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/deploy/envconfig"
)

func adminDo(t *testing.T, p *Proxy, method, uri, token string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://" + p.AdminAddr() + uri)
	req.Header.SetMethod(method)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp := new(fasthttp.Response)
	if err := testClient.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestAdminEndpointsAndPurge(t *testing.T) {
	o := newScripted(t)
	o.handle("/adm/a", cacheable("a"))
	o.handle("/adm/g", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Edgecache-Groups", "thing/9=1")
		cacheable("g")(ctx)
	})
	cfg := testConfig(o.url())
	cfg.AdminToken = "s3cret"
	p := startProxy(t, cfg)
	noToken := startProxy(t, testConfig(o.url()))

	if r := adminDo(t, p, "GET", "/healthz", ""); r.StatusCode() != 200 {
		t.Fatalf("/healthz: %d", r.StatusCode())
	}
	if r := adminDo(t, p, "GET", "/readyz", ""); r.StatusCode() != 200 {
		t.Fatalf("/readyz: %d %s", r.StatusCode(), r.Body())
	}
	get(t, p, "/adm/a")
	get(t, p, "/adm/a")
	m := string(adminDo(t, p, "GET", "/metrics", "").Body())
	for _, want := range []string{`edgecache_proxy_requests_total{outcome="hit"} 1`, `edgecache_proxy_origin_request_duration_seconds_bucket{le=`,
		`edgecache_proxy_memcached_ops_total{op="get"}`, "edgecache_proxy_hit_ratio 0.5", "edgecache_proxy_coalesced_waits_total", "process_cpu_seconds_user_total",
		"edgecache_proxy_l1_evictions_total 0", "edgecache_proxy_l1_entries 1", `edgecache_proxy_memcached_evictions_total{node="` + memcachedAddr() + `"}`,
		`edgecache_proxy_memcached_limit_bytes{node="` + memcachedAddr() + `"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if r := adminDo(t, p, "GET", "/debug/pprof/", ""); r.StatusCode() != 200 || !strings.Contains(string(r.Body()), "goroutine") {
		t.Errorf("/debug/pprof/: %d", r.StatusCode())
	}

	// Purge by URL and by group.
	if r := adminDo(t, noToken, "POST", "/purge?url=http://edge.test/adm/a", ""); r.StatusCode() != 403 {
		t.Fatalf("purge without a configured token: %d, want 403", r.StatusCode())
	}
	if r := adminDo(t, p, "POST", "/purge?url=http://edge.test/adm/a", "wrong"); r.StatusCode() != 401 {
		t.Fatalf("purge with a wrong token: %d, want 401", r.StatusCode())
	}
	if r := adminDo(t, p, "POST", "/purge?url=/relative", "s3cret"); r.StatusCode() != 400 {
		t.Fatalf("purge of a relative URL: %d, want 400", r.StatusCode())
	}
	if r := adminDo(t, p, "POST", "/purge?url=http://edge.test/adm/a", "s3cret"); r.StatusCode() != 200 {
		t.Fatalf("purge: %d %s", r.StatusCode(), r.Body())
	}
	if r := get(t, p, "/adm/a"); strings.Contains(cacheStatus(r), "hit") || o.hits("/adm/a") != 2 {
		t.Fatalf("after purge: %q, origin %d", cacheStatus(r), o.hits("/adm/a"))
	}
	get(t, p, "/adm/g")
	if r := get(t, p, "/adm/g"); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("/adm/g not cached: %q", cacheStatus(r))
	}
	if r := adminDo(t, p, "POST", "/purge?group=thing/9", "s3cret"); r.StatusCode() != 200 {
		t.Fatalf("purge group: %d %s", r.StatusCode(), r.Body())
	}
	if r := get(t, p, "/adm/g"); strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("after group purge: %q", cacheStatus(r))
	}

	// Draining: readiness fails, liveness does not.
	p.Drain()
	if r := adminDo(t, p, "GET", "/readyz", ""); r.StatusCode() != 503 {
		t.Fatalf("/readyz while draining: %d", r.StatusCode())
	}
	if r := adminDo(t, p, "GET", "/metrics", ""); !strings.Contains(string(r.Body()), "edgecache_proxy_ready 0\n") {
		t.Fatal("/metrics while draining lacks edgecache_proxy_ready 0")
	}
	if r := adminDo(t, p, "GET", "/healthz", ""); r.StatusCode() != 200 {
		t.Fatalf("/healthz while draining: %d", r.StatusCode())
	}
}

func TestBadInputGetsJSONErrorsAndPanicsAreContained(t *testing.T) {
	o := newScripted(t)
	o.handle("/bad/boom", cacheable("x"))
	o.handle("/bad/fill-boom", cacheable("y"))
	o.handle("/bad/ok", cacheable("ok"))
	cfg := testConfig(o.url())
	cfg.MaxBodyBytes = 1024
	cfg.MaxHeaderBytes = 2048
	p := startProxy(t, cfg)

	r := do(t, p, "POST", "/bad/w", nil, strings.Repeat("x", 2000))
	if r.StatusCode() != 413 || jsonErrorCode(t, r) != "body_too_large" {
		t.Fatalf("large body: %d %s", r.StatusCode(), r.Body())
	}
	r = get(t, p, "/bad/ok", "X-Big", strings.Repeat("y", 4000))
	if r.StatusCode() != 431 || jsonErrorCode(t, r) != "headers_too_large" {
		t.Fatalf("large headers: %d %s", r.StatusCode(), r.Body())
	}

	var handlerPanics atomic.Bool
	handlerPanics.Store(true)
	p.hooks.Store(&testHooks{
		onWait: func(string) {
			if handlerPanics.Load() {
				panic("boom in the handler")
			}
		},
		beforeStore: func(path string) {
			if path == "/bad/fill-boom" {
				panic("boom in a fill")
			}
		},
	})
	r = get(t, p, "/bad/boom")
	if r.StatusCode() != 500 || jsonErrorCode(t, r) != "internal" {
		t.Fatalf("panic in the handler: %d %s", r.StatusCode(), r.Body())
	}
	handlerPanics.Store(false)
	r = get(t, p, "/bad/fill-boom")
	if r.StatusCode() != 500 || jsonErrorCode(t, r) != "internal" {
		t.Fatalf("panic in a fill: %d %s", r.StatusCode(), r.Body())
	}
	p.hooks.Store(nil)
	if r := get(t, p, "/bad/ok"); r.StatusCode() != 200 || string(r.Body()) != "ok" {
		t.Fatalf("after the panics the proxy does not serve: %d %s", r.StatusCode(), r.Body())
	}
	if p.m.panics.Get() != 2 {
		t.Fatalf("panics counted: %d, want 2", p.m.panics.Get())
	}
}

func TestConfigValidate(t *testing.T) {
	good := defaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"PROXY_LISTEN":                   func(c *Config) { c.Listen = "8080" },
		"PROXY_ORIGINS":                  func(c *Config) { c.Origins = []string{"ftp://x"} },
		"PROXY_MEMCACHED":                func(c *Config) { c.Memcached = nil },
		"PROXY_MEMCACHED_TIMEOUT":        func(c *Config) { c.MemcachedTimeout = 0 },
		"PROXY_LEASE_TTL":                func(c *Config) { c.LeaseTTL = 1500 * time.Millisecond },
		"PROXY_MAX_OBJECT_BYTES":         func(c *Config) { c.MaxObjectBytes = 2 << 20 },
		"PROXY_LOG_LEVEL":                func(c *Config) { c.LogLevel = "loud" },
		"PROXY_CACHE_NAME":               func(c *Config) { c.CacheName = "a b" },
		"PROXY_MEMCACHED_MAX_IDLE_CONNS": func(c *Config) { c.MemcachedMaxIdleConns = 0 },
		"PROXY_ACCESS_LOG":               func(c *Config) { c.AccessLog = "stdot" },
		"PROXY_PUBLIC_PATHS":             func(c *Config) { c.PublicPaths = []string{"v1/"} },
		"PROXY_CONSISTENCY_SAMPLE":       func(c *Config) { c.ConsistencySample = 1.5 },
		"PROXY_CONSISTENCY_MAX_RATE":     func(c *Config) { c.ConsistencyMaxRate = 0 },
		"PROXY_CONSISTENCY_BOUND":        func(c *Config) { c.ConsistencyBound = 0 },
		"PROXY_ORIGIN_WRITE_TIMEOUT":     func(c *Config) { c.OriginWriteTimeout = 0 },
		"PROXY_PEER_NETWORKS":            func(c *Config) { c.PeerNetworks = []string{"10.0.0.0"} },
		"PROXY_MEMORY_LIMIT":             func(c *Config) { c.MemoryLimit = -1 },
		"PROXY_PROXY_PROTOCOL":           func(c *Config) { c.ProxyProtocol, c.TrustedProxies = true, nil },
	} {
		c := good
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate() = %v, want an error naming it", name, err)
		}
	}
	t.Setenv("PROXY_ORIGINS", "http://a:1,http://b:2")
	t.Setenv("PROXY_COALESCE_WAIT", "750ms")
	cfg, err := envconfig.Load[Config]()
	if err != nil || len(cfg.Origins) != 2 || cfg.CoalesceWait != 750*time.Millisecond {
		t.Fatalf("envconfig.Load from the environment: %+v, %v", cfg, err)
	}
}
