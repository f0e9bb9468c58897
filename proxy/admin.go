package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http/pprof"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
	"edgecache/proxy/lease"
)

// newAdminServer serves the admin listener: /healthz (the process runs),
// /readyz (not draining, and a memcached node or an origin in service), /metrics
// (Prometheus text), /debug/pprof/, POST /purge?url=... or ?group=...
// behind the bearer token PROXY_ADMIN_TOKEN (403 when none is configured),
// and, with leases on, POST /lease/invalidate behind PROXY_PEER_SECRET
// (package lease: other proxies and the invalidator tell this one's L1
// what moved).
func (p *Proxy) newAdminServer() *fasthttp.Server {
	pprofIndex := fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Index)
	pprofHandlers := map[string]fasthttp.RequestHandler{
		"/debug/pprof/cmdline": fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Cmdline),
		"/debug/pprof/profile": fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Profile),
		"/debug/pprof/symbol":  fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Symbol),
		"/debug/pprof/trace":   fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Trace),
	}
	h := func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		switch {
		case path == "/healthz":
			ctx.SetContentType("text/plain")
			ctx.SetBodyString("ok\n")
		case path == "/readyz":
			p.readyz(ctx)
		case path == "/metrics":
			ctx.SetContentType("text/plain; version=0.0.4")
			p.m.set.WritePrometheus(ctx)
			p.writeCacheStats(ctx)
			metrics.WriteGaugeUint64(ctx, "edgecache_proxy_ready", b2u(p.readiness().ready()))
			metrics.WriteProcessMetrics(ctx) // Go runtime, CPU, memory: bench plan sizes the fleet from CPU
		case path == "/consistency":
			p.serveConsistency(ctx)
		case path == "/purge":
			p.purge(ctx)
		case path == lease.Path && p.lease != nil:
			p.lease.ServeInvalidate(ctx)
		case strings.HasPrefix(path, "/debug/pprof/"):
			if hh, ok := pprofHandlers[path]; ok {
				hh(ctx)
			} else {
				pprofIndex(ctx)
			}
		default:
			p.errorJSON(ctx, fasthttp.StatusNotFound, "not_found", "no such admin endpoint")
		}
	}
	return &fasthttp.Server{
		Handler:      p.recoverPanic(h),
		Name:         p.cfg.CacheName + "-admin",
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 60 * time.Second, // pprof profiles take 30 s by default
		IdleTimeout:  p.cfg.IdleTimeout,
		Logger:       zapLogger{p.log},
	}
}

// writeCacheStats writes what tells whether the caches are big enough: L1's
// size and evictions, whether each memcached node is in use (1) or marked
// down (0), and every reachable node's evictions, items and memory (read
// from the node at scrape time).
func (p *Proxy) writeCacheStats(w io.Writer) {
	metrics.WriteGaugeUint64(w, "edgecache_proxy_l1_bytes", uint64(p.l1.Weight()))
	metrics.WriteGaugeUint64(w, "edgecache_proxy_l1_entries", uint64(p.l1.Len()))
	metrics.WriteCounterUint64(w, "edgecache_proxy_l1_evictions_total", p.l1.Evictions())
	for n := 0; n < p.store.Nodes(); n++ {
		if !p.store.NodeMember(n) {
			continue
		}
		metrics.WriteGaugeUint64(w, `edgecache_proxy_memcached_up{node="`+p.store.NodeAddr(n)+`"}`, b2u(p.store.NodeUp(n)))
	}
	for n := 0; n < p.store.Nodes(); n++ {
		if !p.store.NodeMember(n) || !p.store.NodeUp(n) {
			continue
		}
		st, err := p.store.NodeStats(n)
		if err != nil {
			p.log.Debug("memcached stats", zap.String("node", p.store.NodeAddr(n)), zap.Error(err))
			continue
		}
		node := `{node="` + p.store.NodeAddr(n) + `"}`
		metrics.WriteCounterUint64(w, "edgecache_proxy_memcached_evictions_total"+node, st["evictions"])
		metrics.WriteGaugeUint64(w, "edgecache_proxy_memcached_items"+node, st["curr_items"])
		metrics.WriteGaugeUint64(w, "edgecache_proxy_memcached_bytes"+node, st["bytes"])
		metrics.WriteGaugeUint64(w, "edgecache_proxy_memcached_limit_bytes"+node, st["limit_maxbytes"])
	}
}

// readyz tells the load balancer whether to send this instance traffic. A
// memcached node or an origin that is down is the whole fleet's problem, not
// this instance's: taking every proxy out of the load balancer would turn a
// degraded service into no service, and an instance that reaches memcached
// still serves every cached read while all origins are down or hung. So it
// fails (503) only while draining, or when this instance can use neither
// any memcached node nor any origin and so can answer nothing. The body
// lists every dependency out of service either way.
//
// It answers at once from state the proxy already keeps: memcached nodes
// marked down by failed operations (proxy/store), origins ejected by failed
// requests or by their background probe (originhealth.go). Asking the
// dependencies here would make the answer as slow as the slowest of them,
// and a load balancer whose check times out takes out every instance at
// once.
func (p *Proxy) readyz(ctx *fasthttp.RequestCtx) {
	r := p.readiness()
	if !r.ready() {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	}
	b, _ := json.Marshal(r)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(append(b, '\n'))
}

// readiness is the state /readyz reports, from what the proxy already keeps.
func (p *Proxy) readiness() readiness {
	r := readiness{Degraded: []dependency{}}
	memcachedUp := 0
	for n := 0; n < p.store.Nodes(); n++ {
		if !p.store.NodeMember(n) {
			continue
		}
		if p.store.NodeUp(n) {
			memcachedUp++
			continue
		}
		r.Degraded = append(r.Degraded, dependency{Dependency: "memcached", Address: p.store.NodeAddr(n), State: "down"})
	}
	ejected := p.origins.ejected()
	for _, o := range ejected {
		r.Degraded = append(r.Degraded, dependency{Dependency: "origin", Address: o.origin, State: "ejected",
			Since: o.since.UTC().Format(time.RFC3339Nano), Error: o.why})
	}
	switch {
	case p.draining.Load():
		r.Status = "draining"
	case memcachedUp == 0 && len(ejected) == len(p.origins.ups):
		r.Status = "unavailable"
	case len(r.Degraded) > 0:
		r.Status = "degraded"
	default:
		r.Status = "ready"
	}
	return r
}

// b2u is 1 for true, 0 for false: a gauge's value.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// ready says whether /readyz answers 200: not draining, not unavailable.
func (r readiness) ready() bool { return r.Status == "ready" || r.Status == "degraded" }

// readiness is /readyz's body. Status is "ready", "degraded" (still 200),
// "draining" or "unavailable" (503).
type readiness struct {
	Status   string       `json:"status"`
	Degraded []dependency `json:"degraded"`
}

// dependency is one memcached node ("down") or origin ("ejected", with
// when and why) out of service.
type dependency struct {
	Dependency string `json:"dependency"`
	Address    string `json:"address"`
	State      string `json:"state"`
	Since      string `json:"since,omitempty"`
	Error      string `json:"error,omitempty"`
}

// purge moves the URL group of ?url= (an absolute URL as clients request
// it) or the group ?group= forward: every proxy stops serving what was
// stored under it; with ?soft=1, every proxy serves it as stale while one
// refresh per key runs (invalidate.go, purgeURL).
func (p *Proxy) purge(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		p.errorJSON(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if p.cfg.AdminToken == "" {
		p.errorJSON(ctx, fasthttp.StatusForbidden, "purge_disabled", "purge is disabled: PROXY_ADMIN_TOKEN is not set")
		return
	}
	auth := ctx.Request.Header.Peek("Authorization")
	want := "Bearer " + p.cfg.AdminToken
	if subtle.ConstantTimeCompare(auth, []byte(want)) != 1 {
		p.errorJSON(ctx, fasthttp.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
		return
	}
	args := ctx.QueryArgs()
	var soft bool
	switch s := string(args.Peek("soft")); s {
	case "", "0", "false":
	case "1", "true":
		soft = true
	default:
		p.errorJSON(ctx, fasthttp.StatusBadRequest, "bad_soft", "soft must be 1, true, 0 or false")
		return
	}
	var err error
	switch {
	case args.Has("url"):
		u, perr := url.Parse(string(args.Peek("url")))
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.errorJSON(ctx, fasthttp.StatusBadRequest, "bad_url", "url must be an absolute http(s) URL")
			return
		}
		q := p.query.keep(nil, []byte(u.Path), []byte(u.RawQuery))
		key := cachepolicy.AppendKey(nil, []byte(u.Scheme), []byte(u.Host), []byte(u.EscapedPath()), q)
		err = p.purgeURL(string(key), soft)
	case args.Has("group"):
		g := args.Peek("group")
		if len(g) == 0 || len(g) > maxGroupName {
			p.errorJSON(ctx, fasthttp.StatusBadRequest, "bad_group", "group must be 1 to 200 bytes")
			return
		}
		err = p.purgeGroup(string(g), soft)
	default:
		p.errorJSON(ctx, fasthttp.StatusBadRequest, "missing_target", "give url= or group=")
		return
	}
	if err != nil {
		p.log.Warn("purge incomplete", zap.Error(err))
		p.errorJSON(ctx, fasthttp.StatusServiceUnavailable, "purge_incomplete", "memcached could not be updated; the purge is retried when the node is back")
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"purged":true,"soft":` + strconv.FormatBool(soft) + "}\n")
}
