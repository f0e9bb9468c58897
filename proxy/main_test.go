package proxy

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/proxy/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopStacks()
	os.Exit(code)
}

// memcachedAddr is the address of the private memcached every test in
// this package shares, started on first use (tests over memstore need
// none); tests keep apart by using their own paths.
func memcachedAddr() string {
	sharedMemcached.once.Do(func() {
		mc, err := localstack.StartMemcached(context.Background(), 64)
		if err != nil {
			panic("memcached: " + err.Error())
		}
		sharedMemcached.addr = mc.Addr
		stackMu.Lock()
		defer stackMu.Unlock()
		stackStops = append(stackStops, mc.Stop)
	})
	return sharedMemcached.addr
}

var sharedMemcached struct {
	once sync.Once
	addr string
}

// scripted is a test origin whose answer per path a test sets, and which
// counts the requests it gets.
type scripted struct {
	srv   *fasthttp.Server
	ln    net.Listener
	mu    sync.Mutex
	h     map[string]fasthttp.RequestHandler
	count map[string]*atomic.Int64
}

func newScripted(t testing.TB) *scripted {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{ln: ln, h: map[string]fasthttp.RequestHandler{}, count: map[string]*atomic.Int64{}}
	// Room for the longest request header a proxy forwards (PROXY_MAX_HEADER_BYTES).
	s.srv = &fasthttp.Server{Handler: s.serve, NoDefaultDate: true, NoDefaultContentType: true, ReadBufferSize: 64 << 10}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Shutdown() })
	return s
}

func (s *scripted) url() string { return "http://" + s.ln.Addr().String() }

func (s *scripted) handle(path string, h fasthttp.RequestHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h[path] = h
	s.count[path] = new(atomic.Int64)
}

func (s *scripted) hits(path string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.count[path]; c != nil {
		return c.Load()
	}
	return 0
}

func (s *scripted) serve(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if path == "/healthz" {
		return
	}
	s.mu.Lock()
	h, c := s.h[path], s.count[path]
	s.mu.Unlock()
	if h == nil {
		ctx.SetStatusCode(404)
		ctx.Response.Header.Set("Cache-Control", "no-store")
		return
	}
	c.Add(1)
	h(ctx)
}

// testConfig is a configuration for a proxy on free ports in front of
// origins, sharing the test memcached.
func testConfig(origins ...string) Config {
	cfg := memConfig(origins...)
	cfg.Memcached = []string{memcachedAddr()}
	return cfg
}

// memConfig is testConfig without memcached, for a proxy over memstore.
func memConfig(origins ...string) Config {
	cfg := defaultConfig()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Origins = origins
	cfg.PublicPaths = []string{"/"} // the scripted origins' paths; public_test.go checks the default
	cfg.AccessLog = "off"
	cfg.DrainDelay = 0
	cfg.LeaseTTL = 5 * time.Second
	cfg.CoalesceWait = 20 * time.Second
	cfg.OriginTimeout, cfg.OriginWriteTimeout = 20*time.Second, 20*time.Second
	cfg.MemcachedTimeout = 3 * time.Second // the test machine is shared and busy
	// Consistency checks send requests of their own to the origin, which
	// tests counting origin requests would see: on in the tests of them.
	cfg.ConsistencySample = 0
	return cfg
}

func defaultConfig() Config {
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "PROXY_") {
			os.Unsetenv(strings.SplitN(e, "=", 2)[0])
		}
	}
	cfg, err := envconfig.Load[Config]()
	if err != nil {
		panic(err)
	}
	return cfg
}

func startProxy(t testing.TB, cfg Config) *Proxy { return startProxyOver(t, cfg, nil) }

// startProxyOver starts a proxy over st (cfg.Memcached unused), or over
// cfg.Memcached if st is nil.
func startProxyOver(t testing.TB, cfg Config, st storage) *Proxy {
	var log *zap.Logger
	if testing.Verbose() {
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	} else {
		log = zap.NewNop()
	}
	var p *Proxy
	var err error
	if st == nil {
		p, err = Start(cfg, log)
	} else {
		p, err = start(cfg, log, newMetricSet(cfg.CacheName), st)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// do sends one request to a proxy and returns the response (owned by the
// caller).
func do(t testing.TB, p *Proxy, method, path string, hdr map[string]string, body string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://" + p.Addr() + path)
	req.Header.SetMethod(method)
	req.Header.SetHost("edge.test")
	req.UseHostHeader = true // every instance sees the same public host, as behind a load balancer
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body != "" {
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
	}
	resp := new(fasthttp.Response)
	if err := testClient.DoTimeout(req, resp, 30*time.Second); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

var testClient = &fasthttp.Client{MaxConnsPerHost: 1024, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}

func get(t testing.TB, p *Proxy, path string, hdr ...string) *fasthttp.Response {
	t.Helper()
	m := map[string]string{}
	for i := 0; i+1 < len(hdr); i += 2 {
		m[hdr[i]] = hdr[i+1]
	}
	return do(t, p, "GET", path, m, "")
}

func cacheStatus(r *fasthttp.Response) string { return string(r.Header.Peek("Cache-Status")) }

// stackStops are cleanups of package-wide servers started lazily by tests
// (MariaDB, the real origin), run after all tests.
var (
	stackMu    sync.Mutex
	stackStops []func()
)

func stopStacks() {
	stackMu.Lock()
	defer stackMu.Unlock()
	for i := len(stackStops) - 1; i >= 0; i-- {
		stackStops[i]()
	}
}

// memcachedOf is p's storage, in the tests that start p over memcached.
func memcachedOf(p *Proxy) *store.Store { return p.store.(*store.Store) }
