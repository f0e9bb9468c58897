package proxy

import (
	"errors"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
)

// write forwards a request with an unsafe (or any non-GET/HEAD) method to
// the origin and, before the answer is sent, invalidates what it changed
// (invalidate.go). When the origin's answer is lost or is a 5xx, the write
// may still have committed: the target URI is invalidated all the same, and
// the answer says "Edgecache-Invalidation: pending" — the durable
// invalidator moves the data's groups from the database's own log.
//
// While every origin is ejected, a write is refused at once with a 503 and
// Retry-After: nothing of it was sent, so the client knows it was not
// applied, where trying the least recently failed origin (as reads do, see
// pick) would hold it for up to PROXY_ORIGIN_TIMEOUT and then leave it in
// doubt (504, pending).
func (p *Proxy) write(ctx *fasthttp.RequestCtx) string {
	if p.origins.allEjected() {
		p.errorJSON(ctx, fasthttp.StatusServiceUnavailable, "origin_unavailable",
			"every origin is out of service; the write was not sent, retry shortly")
		ctx.Response.Header.Set("Retry-After", "1")
		return outcomeError
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	body, ok := p.readBody(ctx)
	if !ok {
		return outcomeError
	}
	p.originRequest(ctx, req, false)
	req.SetBodyRaw(body)
	err := p.origins.do(req, resp, false, time.Now().Add(p.cfg.OriginWriteTimeout))
	if errors.Is(err, errOriginOverloaded) { // not sent: nothing to invalidate
		p.originFailed(ctx, err)
		return outcomeError
	}
	if err != nil {
		p.invalidateUnknown(ctx)
		p.originFailed(ctx, err)
		ctx.Response.Header.Set(hdrInvalidation, "pending")
		p.m.writesPending[pendingOriginFailed].Inc()
		return outcomeError
	}
	pending := ""
	switch status := resp.StatusCode(); {
	case status >= 500:
		p.invalidateUnknown(ctx)
		pending = pendingOrigin5xx
	case cachepolicy.Invalidates(ctx.Method(), status):
		if err := p.invalidateWrite(ctx, resp); err != nil {
			pending = pendingMemcached
			p.log.Warn("write invalidation pending", zap.ByteString("method", ctx.Method()),
				zap.ByteString("uri", ctx.RequestURI()), zap.Error(err))
		}
	}
	p.copyResponse(ctx, resp)
	if pending != "" {
		ctx.Response.Header.Set(hdrInvalidation, "pending")
		p.m.writesPending[pending].Inc()
	}
	var cs cachepolicy.CacheStatus
	cs.Cache, cs.Fwd, cs.FwdStatus = p.cfg.CacheName, cachepolicy.FwdMethod, resp.StatusCode()
	ctx.Response.Header.SetBytesV("Cache-Status", cs.Append(nil))
	return outcomeWrite
}
