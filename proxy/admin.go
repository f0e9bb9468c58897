package proxy

import (
	"crypto/subtle"
	"io"
	"net/http/pprof"
	"net/url"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
)

// newAdminServer serves the admin listener: /healthz (the process runs),
// /readyz (not draining, and memcached or an origin answers), /metrics
// (Prometheus text), /debug/pprof/, and POST /purge?url=... or ?group=...
// behind the bearer token PROXY_ADMIN_TOKEN (403 when none is configured).
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
			metrics.WriteProcessMetrics(ctx) // Go runtime, CPU, memory: bench plan sizes the fleet from CPU
		case path == "/purge":
			p.purge(ctx)
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

// readyz tells the load balancer whether to send this instance traffic. A
// memcached node or an origin that is down is the whole fleet's problem, not
// this instance's: taking every proxy out of the load balancer would turn a
// degraded service into no service. So it fails only while draining, or when
// this instance can reach neither memcached nor any origin and so can answer
// nothing; the body names every dependency that is down either way.
// writeCacheStats writes what tells whether the caches are big enough: L1's
// size and evictions, and every reachable memcached node's evictions, items
// and memory (read from the node at scrape time).
func (p *Proxy) writeCacheStats(w io.Writer) {
	metrics.WriteGaugeUint64(w, "edgecache_proxy_l1_bytes", uint64(p.l1.Weight()))
	metrics.WriteGaugeUint64(w, "edgecache_proxy_l1_entries", uint64(p.l1.Len()))
	metrics.WriteCounterUint64(w, "edgecache_proxy_l1_evictions_total", p.l1.Evictions())
	for n := 0; n < p.store.Nodes(); n++ {
		if !p.store.NodeUp(n) {
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

func (p *Proxy) readyz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain")
	if p.draining.Load() {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("draining\n")
		return
	}
	down, allDown := p.store.Ping()
	originErr := p.origins.ping(time.Second)
	if allDown && originErr != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	}
	switch {
	case down == nil:
		ctx.WriteString("memcached: ok\n")
	case allDown:
		ctx.WriteString("memcached: down: " + down.Error() + "\n")
	default:
		ctx.WriteString("memcached: degraded: " + down.Error() + "\n")
	}
	if originErr != nil {
		ctx.WriteString("origin: down: " + originErr.Error() + "\n")
	} else {
		ctx.WriteString("origin: ok\n")
	}
}

// purge moves the URL group of ?url= (an absolute URL as clients request
// it) or the group ?group= forward: every proxy stops serving what was
// stored under it.
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
	var err error
	switch {
	case args.Has("url"):
		u, perr := url.Parse(string(args.Peek("url")))
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.errorJSON(ctx, fasthttp.StatusBadRequest, "bad_url", "url must be an absolute http(s) URL")
			return
		}
		key := cachepolicy.AppendKey(nil, []byte(u.Scheme), []byte(u.Host), []byte(u.EscapedPath()), []byte(u.RawQuery))
		err = p.purgeURL(string(key))
	case args.Has("group"):
		g := args.Peek("group")
		if len(g) == 0 || len(g) > maxGroupName {
			p.errorJSON(ctx, fasthttp.StatusBadRequest, "bad_group", "group must be 1 to 200 bytes")
			return
		}
		err = p.purgeGroup(string(g))
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
	ctx.SetBodyString(`{"purged":true}` + "\n")
}
