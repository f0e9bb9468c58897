package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
	"edgecache/proxy/accesslog"
)

// serve dispatches a client request: a path outside PROXY_PUBLIC_PATHS to
// a 404 of the proxy's own, reads to the cache state machine (read.go),
// writes to the origin with invalidation (write.go).
func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	// One clock reading at the start (fasthttp's, when it read the
	// request) and one at the end, shared by the latency metric and the
	// access log line.
	start := ctx.Time()
	var outcome string
	var latency *metrics.PrometheusHistogram // reads' or writes'; none for the proxy's own answers
	switch {
	case !fieldNamesValid(&ctx.Request.Header):
		p.errorJSON(ctx, fasthttp.StatusBadRequest, "bad_request", "a header field name contains a space")
		ctx.SetConnectionClose()
		outcome = outcomeError
	case !p.bodyAllowed(&ctx.Request.Header):
		p.refuseBody(ctx)
		outcome = outcomeError
	case !p.isPublic(ctx):
		p.errorJSON(ctx, fasthttp.StatusNotFound, "not_found", "no such resource")
		outcome = outcomeError
	case ctx.IsGet() || ctx.IsHead():
		outcome, latency = p.read(ctx, start), p.m.readDuration
	case ctx.IsConnect():
		p.errorJSON(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "CONNECT is not supported")
		outcome = outcomeError
	case p.overBudget(ctx, p.writeBudget, budgetWrite, "writes"):
		if ctx.Request.Header.ContentLength() != 0 {
			ctx.SetConnectionClose() // its body is left unread
		}
		outcome = outcomeError
	default:
		outcome, latency = p.write(ctx), p.m.writeDuration
	}
	end := time.Now()
	if latency != nil {
		latency.Update(end.Sub(start).Seconds())
	}
	p.m.requests[outcome].Inc()
	if p.access != nil {
		err := p.access.Write(&accesslog.Request{Time: end, Method: ctx.Method(), URI: ctx.RequestURI(),
			Status: ctx.Response.StatusCode(), Outcome: outcome, Bytes: len(ctx.Response.Body()),
			Duration: end.Sub(start), Client: p.trusted.clientAddr(ctx)})
		if err != nil {
			p.m.accessLogErrors.Inc()
		}
	}
}

// isPublic reports whether the request's path is under one of
// PROXY_PUBLIC_PATHS, both as sent (what the origin gets) and as fasthttp
// normalises it (percent-decoded, dot segments removed): /v1/../metrics is
// not public. The origin's own /metrics, /healthz and /readyz never leave
// through the client listener.
func (p *Proxy) isPublic(ctx *fasthttp.RequestCtx) bool {
	sent, clean := ctx.URI().PathOriginal(), ctx.Path()
	for _, prefix := range p.public {
		if bytes.HasPrefix(sent, prefix) && bytes.HasPrefix(clean, prefix) {
			return true
		}
	}
	return false
}

// fieldNamesValid reports whether no field name of h contains a space.
// fasthttp refuses whitespace between a name and its colon (RFC 9112 §5.1:
// a server MUST answer 400) and tabs, but keeps names such as "Foo Bar"
// (not a token, RFC 9110 §5.1): an origin or cache behind that reads
// them otherwise would see other fields than the proxy did.
func fieldNamesValid(h *fasthttp.RequestHeader) bool {
	for k := range h.All() {
		if bytes.IndexByte(k, ' ') >= 0 {
			return false
		}
	}
	return true
}

// recoverPanic turns a panic in a handler into a 500 and a log line; the
// process keeps serving.
func (p *Proxy) recoverPanic(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() {
			if r := recover(); r != nil {
				p.m.panics.Inc()
				p.log.Error("panic serving request", zap.Any("panic", r),
					zap.ByteString("uri", ctx.RequestURI()), zap.ByteString("stack", debug.Stack()))
				ctx.Response.Reset()
				p.errorJSON(ctx, fasthttp.StatusInternalServerError, "internal", "internal error")
			}
		}()
		h(ctx)
	}
}

// serverError answers requests fasthttp could not parse.
func (p *Proxy) serverError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		p.errorJSON(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "headers_too_large",
			fmt.Sprintf("request headers exceed %d bytes", p.cfg.MaxHeaderBytes))
	default:
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			p.errorJSON(ctx, fasthttp.StatusRequestTimeout, "request_timeout", "request not received in time")
			return
		}
		p.errorJSON(ctx, fasthttp.StatusBadRequest, "bad_request", "malformed request")
	}
	p.log.Info("bad request", zap.Error(err), zap.String("client", ctx.RemoteIP().String()))
}

// errorJSON writes the project's error shape. The message must not hold
// raw user input.
func (p *Proxy) errorJSON(ctx *fasthttp.RequestCtx, status int, code, message string) {
	startResponse(&ctx.Response.Header, nil) // the proxy's own answer: its own Date
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.SetBytesV("Via", p.via)
	b := make([]byte, 0, 64+len(code)+len(message))
	b = append(b, `{"error":{"code":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, message)
	b = append(b, "}}\n"...)
	ctx.SetBody(b)
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
		fasthttp.StatusServiceUnavailable: "the origin is busy; retry shortly",
		fasthttp.StatusGatewayTimeout:     "the origin did not answer in time",
	}[oe.status]
	p.errorJSON(ctx, oe.status, oe.code, msg)
	if oe.status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", "1")
	}
}

// originRequest fills req with what is forwarded from the client request:
// method, request URI, Host, the end-to-end header fields (not hop-by-hop,
// not named by Connection, not internal; for a fill also none of the
// client's conditional or range fields: the fill wants the full response
// that every client can share), Via and X-Forwarded-For/-Proto.
func (p *Proxy) originRequest(ctx *fasthttp.RequestCtx, req *fasthttp.Request, fill bool) {
	in := &ctx.Request.Header
	// Origin-form with the Host that keyed the entry: an absolute-form
	// request line (GET http://other.example/x) must not reach the origin
	// under another authority than the one its answer is cached for.
	uri := ctx.URI()
	path, q := uri.PathOriginal(), uri.QueryString()
	if ctx.IsGet() || ctx.IsHead() {
		q = p.query.keep(nil, ctx.Path(), q) // what the cache key keeps (query.go)
	}
	target := append(make([]byte, 0, len(path)+1+len(q)), path...)
	if len(q) > 0 {
		target = append(append(target, '?'), q...)
	}
	req.Header.SetRequestURIBytes(target)
	req.Header.SetMethodBytes(in.Method())
	req.Header.SetHostBytes(in.Host())
	req.UseHostHeader = true
	conn := in.Peek("Connection")
	var xff [][]byte
	var xfp, via []byte
	for k, v := range in.All() {
		switch {
		case !p.rules.Forward(k, conn):
			continue
		case cachepolicy.EqualFold(k, "X-Forwarded-For"):
			xff = append(xff, v) // every line: one list (RFC 9110 §5.3)
			continue
		case cachepolicy.EqualFold(k, "X-Forwarded-Proto"):
			xfp = v
			continue
		case cachepolicy.EqualFold(k, "Via"):
			via = v
			continue
		case cachepolicy.EqualFold(k, "Host"), cachepolicy.EqualFold(k, "Content-Length"):
			continue
		case fill && (cachepolicy.EqualFold(k, "If-None-Match") || cachepolicy.EqualFold(k, "If-Modified-Since") || cachepolicy.EqualFold(k, "If-Match") ||
			cachepolicy.EqualFold(k, "If-Unmodified-Since") || cachepolicy.EqualFold(k, "If-Range") || cachepolicy.EqualFold(k, "Range") ||
			cachepolicy.EqualFold(k, "Cache-Control") || cachepolicy.EqualFold(k, "Pragma")):
			continue
		}
		req.Header.AddBytesKV(k, v)
	}
	peer := peerAddr(ctx)
	trust := p.cfg.TrustXFF || p.trusted.contains(peer)
	if trust && len(xff) > 0 {
		req.Header.Set("X-Forwarded-For", string(bytes.Join(xff, []byte(", ")))+", "+peer.String())
	} else {
		req.Header.Set("X-Forwarded-For", peer.String())
	}
	switch {
	case trust && len(xfp) > 0:
		req.Header.SetBytesV("X-Forwarded-Proto", xfp)
	case ctx.IsTLS():
		req.Header.Set("X-Forwarded-Proto", "https")
	default:
		req.Header.Set("X-Forwarded-Proto", "http")
	}
	if len(via) > 0 {
		req.Header.Set("Via", string(via)+", "+string(p.via))
	} else {
		req.Header.SetBytesV("Via", p.via)
	}
}

// copyResponse writes an origin response to the client: status, the
// end-to-end fields (the origin's Date as it sent it, RFC 9110 §6.6.1; no
// Content-Type it did not send), Via, the body (none for HEAD).
func (p *Proxy) copyResponse(ctx *fasthttp.RequestCtx, resp *fasthttp.Response) {
	out := &ctx.Response
	startResponse(&out.Header, resp.Header.Peek("Date"))
	resp.Header.SetNoDefaultContentType(true)
	out.SetStatusCode(resp.StatusCode())
	conn := resp.Header.Peek("Connection")
	var via []byte
	for k, v := range resp.Header.All() {
		switch {
		case !p.rules.Forward(k, conn), cachepolicy.EqualFold(k, "Content-Length"), cachepolicy.EqualFold(k, "Date"):
		case cachepolicy.EqualFold(k, "Via"):
			via = v
		default:
			out.Header.AddBytesKV(k, v)
		}
	}
	if len(via) > 0 {
		out.Header.Set("Via", string(via)+", "+string(p.via))
	} else {
		out.Header.SetBytesV("Via", p.via)
	}
	if ctx.IsHead() {
		out.SkipBody = true
		if n := resp.Header.ContentLength(); n >= 0 {
			out.Header.SetContentLength(n)
		}
		return
	}
	out.SetBody(resp.Body())
}
