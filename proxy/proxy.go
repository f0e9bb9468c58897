package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"edgecache/cachepolicy"
	"edgecache/proxy/accesslog"
	"edgecache/proxy/deadline"
	"edgecache/proxy/lease"
	"edgecache/proxy/lru"
	"edgecache/proxy/proxyproto"
	"edgecache/proxy/store"
)

// Internal header fields of the origin/proxy contract (proxy/README.md "Internal headers").
const (
	hdrGroups       = "Edgecache-Groups"       // origin -> proxy: groups and versions
	hdrFresh        = "Edgecache-Fresh"        // proxy -> origin: answer from the primary
	hdrInvalidation = "Edgecache-Invalidation" // proxy -> client on a write: "pending" when the durable path must finish it
)

// Proxy is one running proxy instance: the client listener, the admin
// listener and their shared state.
type Proxy struct {
	cfg     Config
	log     *zap.Logger
	m       *metricSet
	store   storage // memcached (*store.Store); in tests also memstore
	origins *origins
	rules   *cachepolicy.FieldRules
	via     []byte

	access     *accesslog.Log // nil when PROXY_ACCESS_LOG is off
	stopAccess func() error   // flushes the access log (and closes its file)
	public     [][]byte       // PROXY_PUBLIC_PATHS
	query      queryRules     // PROXY_QUERY_ALLOW
	trusted    trustedProxies // PROXY_TRUSTED_PROXIES

	missBudget, writeBudget *clientBudget // per client; nil when off (budget.go)

	flights  singleflight.Group
	groupsOf groupMemory
	l1       *lru.Cache[*l1Entry] // this process's copies of valid entries, by primary cache key
	lease    *lease.Holder        // this process's invalidation lease; nil when leases are off
	notifier *lease.Notifier      // tells the lease holders what a write moved

	consistency *consistency // sampled checks of hits (consistency.go); nil when off

	server, admin *fasthttp.Server
	ln, adminLn   net.Listener
	served        sync.WaitGroup // the two Serve loops
	bg            sync.WaitGroup // background refreshes and the probe loops (memcached, origins)
	stop          chan struct{}
	stopOnce      sync.Once
	draining      atomic.Bool

	hooks atomic.Pointer[testHooks] // nil in production
}

// testHooks let tests observe and slow the read path at exact points.
type testHooks struct {
	// onWait runs when a request is coalesced: "process" after it joined
	// this process's flight for its key (the leader too), "fleet" when a
	// fill waits for another proxy's lease.
	onWait func(scope string)
	// beforeStore runs in a fill after the origin answered and before the
	// entry is stored.
	beforeStore func(path string)
	// betweenMovesAndNotify runs in a write after its groups moved in
	// memcached and before the lease holders are told.
	betweenMovesAndNotify func(path string)
}

// clientTimeoutGranularity is how late PROXY_READ_TIMEOUT,
// PROXY_WRITE_TIMEOUT and PROXY_IDLE_TIMEOUT may fire.
const clientTimeoutGranularity = 500 * time.Millisecond

// Start builds the proxy from cfg, opens both listeners and serves in the
// background. log receives operational logs; the access log's lines
// (proxy/accesslog, never sampled) go where PROXY_ACCESS_LOG says.
func Start(cfg Config, log *zap.Logger) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newMetricSet(cfg.CacheName)
	mc, err := store.New(store.Config{Nodes: cfg.Memcached, Timeout: cfg.MemcachedTimeout,
		MaxIdleConns: cfg.MemcachedMaxIdleConns, ProbeInterval: cfg.MemcachedProbeInterval}, log, m.set, "edgecache_proxy")
	if err != nil {
		return nil, err
	}
	return start(cfg, log, m, mc)
}

// start is Start over a storage of the caller's, with cfg already valid.
func start(cfg Config, log *zap.Logger, m *metricSet, st storage) (*Proxy, error) {
	ups, err := newOrigins(cfg, log, m)
	if err != nil {
		return nil, err
	}
	rules := cachepolicy.NewFieldRules(hdrGroups, hdrFresh, hdrInvalidation)
	rules.StripSetCookie = cfg.StripSetCookie
	p := &Proxy{cfg: cfg, log: log, m: m, store: st, origins: ups,
		rules: rules,
		via:   []byte("1.1 " + cfg.CacheName),
		stop:  make(chan struct{}),
	}
	for _, prefix := range cfg.PublicPaths {
		p.public = append(p.public, []byte(prefix))
	}
	p.query, _ = parseQueryAllow(cfg.QueryAllow) // valid: checked by Validate
	p.trusted, _ = parseTrustedProxies(cfg.TrustedProxies)
	p.missBudget = newClientBudget(cfg.ClientMissRate, cfg.ClientMissBurst)
	p.writeBudget = newClientBudget(cfg.ClientWriteRate, cfg.ClientWriteBurst)
	p.groupsOf.init(cfg.GroupMemoryBytes)
	p.consistency = newConsistency(cfg, m.set)
	p.l1 = lru.New[*l1Entry](cfg.L1Bytes)
	access, stopAccess, err := accesslog.OpenWriter(cfg.AccessLog)
	if err != nil {
		return nil, err
	}
	p.stopAccess = stopAccess
	if access != nil {
		p.access = accesslog.New(access)
	}
	p.server = &fasthttp.Server{
		Handler:               p.recoverPanic(p.serve),
		ErrorHandler:          p.serverError,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// A stored or forwarded response carries the origin's Date (RFC
		// 9110 §6.6.1), Age the time since: fasthttp writes a Date only
		// when the handler put one in (startResponse, fields.go), or its
		// own clock's after a header Reset.
		NoDefaultDate: true,
		// The head within PROXY_HEADER_TIMEOUT, then the body within
		// PROXY_READ_TIMEOUT (HeaderReceived moves the deadline).
		ReadTimeout:    cfg.HeaderTimeout,
		HeaderReceived: p.headerReceived,
		WriteTimeout:   cfg.WriteTimeout,
		IdleTimeout:    cfg.IdleTimeout,
		Concurrency:    cfg.MaxConns,
		ReadBufferSize: cfg.MaxHeaderBytes,
		// Without streaming, fasthttp allocates the whole announced
		// Content-Length before reading a byte of it: a client announcing
		// PROXY_MAX_BODY_BYTES and sending nothing cost that much memory
		// per connection. Streamed, it reads at most 8 KiB ahead
		// (headerReceived: 1 byte of a body that will be refused), and the
		// handler reads the rest itself, within the limit (body.go).
		StreamRequestBody:  true,
		MaxRequestBodySize: cfg.MaxBodyBytes,
		// The body is forwarded as sent, never parsed: fasthttp's
		// multipart pre-parse would read a form of any announced length
		// (to temporary files past 16 MiB), whatever the limit says.
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       zapLogger{log},
	}
	p.admin = p.newAdminServer()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		p.stopAccess()
		return nil, err
	}
	// The client listener's timeouts are enforced by a sweep twice a
	// second rather than by a runtime timer moved three times a request
	// (package deadline): they fire up to 0.5 s late.
	p.ln = deadline.NewListener(ln, clientTimeoutGranularity)
	if cfg.ProxyProtocol {
		// Outside the deadline listener, so that the sweep enforces the
		// header's read deadline too; the header counts as part of the
		// request's head (PROXY_HEADER_TIMEOUT).
		p.ln = proxyproto.NewListener(p.ln, p.trusted, cfg.HeaderTimeout, log)
	}
	if p.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
		p.ln.Close()
		p.stopAccess()
		return nil, err
	}
	p.served.Add(2)
	go func() { defer p.served.Done(); p.server.Serve(p.ln) }()
	go func() { defer p.served.Done(); p.admin.Serve(p.adminLn) }()
	if err := p.startLeases(); err != nil {
		p.ln.Close()
		p.adminLn.Close()
		return nil, err
	}
	p.bg.Add(1)
	go func() { defer p.bg.Done(); p.store.Run(p.stop) }()
	p.bg.Add(1)
	go func() { defer p.bg.Done(); p.origins.probeLoop(p.stop) }()
	log.Info("proxy listening", zap.String("listen", p.Addr()), zap.String("admin", p.AdminAddr()),
		zap.Strings("origins", cfg.Origins), zap.Strings("memcached", cfg.Memcached))
	return p, nil
}

// startLeases joins the lease registry (when PROXY_PEER_SECRET is set),
// once the admin listener, where peers send invalidations, is serving.
// The notifier is there either way: a write reads the registry and tells
// (or, without the secret, revokes) whoever holds a lease.
func (p *Proxy) startLeases() error {
	if p.cfg.PeerSecret != "" {
		advertise := p.cfg.PeerAdvertise
		if advertise == "" {
			advertise = p.AdminAddr()
		}
		var id [8]byte
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
		h, err := lease.NewHolder(lease.HolderConfig{ID: hex.EncodeToString(id[:]), Advertise: advertise,
			Duration: p.cfg.LeaseDuration, Secret: p.cfg.PeerSecret}, p.store, p.log.Named("lease"), p.m.set, "edgecache_proxy")
		if err != nil {
			return err
		}
		p.lease = h
		h.Start()
	}
	networks, err := lease.ParseNetworks(p.cfg.PeerNetworks) // valid: Validate parsed it
	if err != nil {
		return err
	}
	p.notifier = lease.NewNotifier(lease.NotifierConfig{Secret: p.cfg.PeerSecret, Duration: p.cfg.LeaseDuration,
		Timeout: p.cfg.PeerTimeout, Self: p.lease, Networks: networks}, p.store, p.log.Named("lease"), p.m.set, "edgecache_proxy")
	return nil
}

// Addr is the client listener's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// AdminAddr is the admin listener's host:port.
func (p *Proxy) AdminAddr() string { return p.adminLn.Addr().String() }

// Drain makes /readyz fail, so that a load balancer stops sending traffic
// before Shutdown closes the listener.
func (p *Proxy) Drain() { p.draining.Store(true) }

// Shutdown fails readiness, stops accepting, waits for in-flight requests
// (until ctx ends), then for background refreshes, and flushes the access log.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.Drain()
	err := p.server.ShutdownWithContext(ctx)
	if p.lease != nil {
		p.lease.Leave() // before the peer listener closes: movers stop waiting for this proxy
	}
	err = errors.Join(err, p.admin.ShutdownWithContext(ctx))
	p.stopOnce.Do(func() { close(p.stop) }) // a second Shutdown (after a kill) waits again
	done := make(chan struct{})
	go func() { p.bg.Wait(); p.served.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return errors.Join(err, p.stopAccess())
}

// zapLogger adapts zap to fasthttp.Logger.
type zapLogger struct{ l *zap.Logger }

func (z zapLogger) Printf(format string, args ...any) { z.l.Sugar().Debugf(format, args...) }

// groupMemory remembers, per primary cache key, the memcached keys of the
// groups its entry was built from, so that a lookup fetches the entry and
// its group versions in one GetMulti. It is only a hint: an entry naming a
// group not remembered costs a second round trip, never a wrong answer.
// It holds at most max bytes (keys and values, as groupMemoryWeight
// counts them); when full it starts over.
type groupMemory struct {
	mu       sync.RWMutex
	m        map[string][]string
	max, now int
}

func (g *groupMemory) init(maxBytes int) {
	g.m, g.max, g.now = make(map[string][]string), maxBytes, 0
}

func (g *groupMemory) get(primary []byte) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m[string(primary)]
}

// weight is what the remembered keys weigh (groupMemoryWeight).
func (g *groupMemory) weight() int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return int64(g.now)
}

func (g *groupMemory) set(primary string, keys []string) {
	w := groupMemoryWeight(primary, keys)
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.m[primary]; ok {
		g.now -= groupMemoryWeight(primary, old)
	}
	if g.now+w > g.max {
		g.m, g.now = make(map[string][]string), 0
	}
	if w > g.max {
		return
	}
	g.m[primary] = keys
	g.now += w
}

// groupMemoryWeight estimates what remembering keys under primary costs:
// the strings, their headers and the map slot with the map's room to grow
// (80 bytes and 16 a key: 200 bytes for a post's one group, as
// TestL1CountsWhatEntriesCost measures; 64 counted 0.90 of it).
func groupMemoryWeight(primary string, keys []string) int {
	w := len(primary) + 80
	for _, k := range keys {
		w += len(k) + 16
	}
	return w
}
