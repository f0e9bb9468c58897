package proxy

import (
	"errors"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
)

// write forwards a request with an unsafe (or any non-GET/HEAD) method to
// the origin exactly once. On a 2xx/3xx answer it invalidates, before the
// answer is sent, the target URI, same-origin Location and Content-Location
// (RFC 9111 §4.4) and every group the origin's Edgecache-Groups names.
func (p *Proxy) write(ctx *fasthttp.RequestCtx) string {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	p.originRequest(ctx, req, false)
	req.SetBodyRaw(ctx.PostBody())
	if err := p.origins.do(req, resp, false, time.Now().Add(p.cfg.OriginTimeout)); err != nil {
		p.originFailed(ctx, err)
		return outcomeError
	}
	incomplete := false
	if cachepolicy.Invalidates(ctx.Method(), resp.StatusCode()) {
		if err := p.invalidateWrite(ctx, resp); err != nil {
			incomplete = true
			p.log.Warn("write invalidation incomplete", zap.ByteString("method", ctx.Method()),
				zap.ByteString("uri", ctx.RequestURI()), zap.Error(err))
		}
	}
	p.copyResponse(ctx, resp)
	if incomplete {
		ctx.Response.Header.Set(hdrInvalidation, "incomplete")
	}
	var cs cachepolicy.CacheStatus
	cs.Cache, cs.Fwd, cs.FwdStatus = p.cfg.CacheName, cachepolicy.FwdMethod, resp.StatusCode()
	ctx.Response.Header.SetBytesV("Cache-Status", cs.Append(nil))
	return outcomeWrite
}

// originFailed answers a request the origin did not answer: 502, 503 or 504
// with a JSON body, at once.
func (p *Proxy) originFailed(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, errFillPanic) {
		p.errorJSON(ctx, fasthttp.StatusInternalServerError, "internal", "internal error")
		return
	}
	var oe *originError
	if !errors.As(err, &oe) {
		oe = classifyOriginError(err)
	}
	p.log.Warn("origin request failed", zap.ByteString("method", ctx.Method()),
		zap.ByteString("uri", ctx.RequestURI()), zap.Int("status", oe.status), zap.Error(err))
	msg := map[int]string{
		fasthttp.StatusBadGateway:         "the origin could not be reached or answered badly",
		fasthttp.StatusServiceUnavailable: "the origin is busy",
		fasthttp.StatusGatewayTimeout:     "the origin did not answer in time",
	}[oe.status]
	p.errorJSON(ctx, oe.status, oe.code, msg)
}

// invalidateWrite moves every group the write changed. A group that cannot
// be moved (its memcached node is down) is queued for the node's recovery;
// entry keys of the target URIs are deleted as well, and the caller marks
// the answer "Edgecache-Invalidation: incomplete". See invalidate.go for
// what this still guarantees and the one case it does not.
func (p *Proxy) invalidateWrite(ctx *fasthttp.RequestCtx, resp *fasthttp.Response) error {
	scheme := []byte("http")
	if ctx.IsTLS() {
		scheme = []byte("https")
	}
	host, path := ctx.Request.Header.Host(), ctx.URI().PathOriginal()
	primaries := []string{string(cachepolicy.AppendKey(nil, scheme, host, path, ctx.URI().QueryString()))}
	for _, h := range []string{"Location", "Content-Location"} {
		if v := resp.Header.Peek(h); len(v) > 0 {
			if k, ok := cachepolicy.AppendLocationKey(nil, scheme, host, path, v); ok {
				primaries = append(primaries, string(k))
			}
		}
	}
	groups, perr := parseGroups(resp.Header.Peek(hdrGroups))
	if perr != nil {
		p.log.Warn("write response has a malformed Edgecache-Groups; moving the groups that parse",
			zap.ByteString("uri", ctx.RequestURI()), zap.ByteString("value", resp.Header.Peek(hdrGroups)))
	}
	var errs []error
	for _, pk := range primaries {
		errs = append(errs, p.moveGroup(groupKey(urlGroup(pk)), 0, pk))
		p.flights.Forget(pk)
	}
	for _, g := range groups {
		errs = append(errs, p.moveGroup(groupKey(g.name), g.version, ""))
	}
	err := errors.Join(errs...)
	if err != nil {
		// Belt and braces: entries of the target URIs go too, so that a
		// proxy reading them finds nothing rather than something whose
		// group it cannot check.
		for _, pk := range primaries {
			p.l2.del(entryKey(pk))
		}
	}
	return errors.Join(err, perr)
}

// moveGroup moves one group forward, or queues the move for when its node is
// back. primary, when set, names the URL the group belongs to (for logs).
func (p *Proxy) moveGroup(key string, originVersion uint64, primary string) error {
	err := bump(p.l2, key, originVersion)
	if err == nil {
		p.m.invalidations.Inc()
		return nil
	}
	p.m.invalidateFail.Inc()
	if errors.Is(err, errUnavailable) {
		p.l2.remember(key, originVersion)
	}
	if primary != "" {
		return errors.New("url " + primary + ": " + err.Error())
	}
	return err
}

// purgeURL and purgeGroup serve the admin listener's POST /purge.
func (p *Proxy) purgeURL(primary string) error {
	p.flights.Forget(primary)
	p.m.purges.Inc()
	return p.moveGroup(groupKey(urlGroup(primary)), 0, primary)
}

func (p *Proxy) purgeGroup(name string) error {
	p.m.purges.Inc()
	return p.moveGroup(groupKey(name), 0, "")
}
