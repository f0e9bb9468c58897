package proxy

import (
	"errors"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Request bodies. The server streams them (StreamRequestBody): fasthttp
// reads at most 8 KiB of a body before the handler runs, and the handler
// reads the rest. A body is read only for a write, and only up to
// PROXY_MAX_BODY_BYTES, whatever its Content-Length announced: a client
// cannot make the proxy hold more than that per connection.

// headerReceived runs once a request's head is read, before its body: the
// body gets PROXY_READ_TIMEOUT from now (the head had
// PROXY_HEADER_TIMEOUT), and a body that will be refused is read no further
// than fasthttp's first byte.
func (p *Proxy) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	c := fasthttp.RequestConfig{ReadTimeout: p.cfg.ReadTimeout}
	if !p.bodyAllowed(h) {
		c.MaxRequestBodySize = 1
	}
	return c
}

// bodyAllowed reports whether the request's announced body may be read: none
// on GET and HEAD (a body there has no meaning, RFC 9110 §9.3.1, and the
// cache would ignore it), at most PROXY_MAX_BODY_BYTES on a write. A chunked
// write's length is unknown until read: readBody enforces the limit.
func (p *Proxy) bodyAllowed(h *fasthttp.RequestHeader) bool {
	n := h.ContentLength() // -1: chunked, -2: neither field (no body)
	if h.IsGet() || h.IsHead() {
		return n == 0 || n == -2
	}
	return n <= p.cfg.MaxBodyBytes
}

// refuseBody answers 413 to a request whose body is not read, and closes
// the connection: what remains of the body must not be parsed as the next
// request.
func (p *Proxy) refuseBody(ctx *fasthttp.RequestCtx) {
	msg := "request body exceeds " + strconv.Itoa(p.cfg.MaxBodyBytes) + " bytes"
	if ctx.IsGet() || ctx.IsHead() {
		msg = "a GET or HEAD request must not have a body"
	}
	p.errorJSON(ctx, fasthttp.StatusRequestEntityTooLarge, "body_too_large", msg)
	ctx.SetConnectionClose()
	p.log.Info("request body refused", zap.ByteString("method", ctx.Method()),
		zap.Int("content_length", ctx.Request.Header.ContentLength()), zap.String("client", ctx.RemoteIP().String()))
}

// readBody reads a write's body from the client stream, at most
// PROXY_MAX_BODY_BYTES. On failure it answers the client itself (413 for
// a chunked body over the limit, 408 when the body does not arrive within
// PROXY_READ_TIMEOUT, 400 for a broken one) and reports false.
func (p *Proxy) readBody(ctx *fasthttp.RequestCtx) ([]byte, bool) {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return nil, true
	}
	body, err := io.ReadAll(io.LimitReader(stream, int64(p.cfg.MaxBodyBytes)+1))
	if err == nil && len(body) > p.cfg.MaxBodyBytes {
		err = errBodyTooLarge // chunked: its length showed only now
	}
	if err == nil {
		return body, true
	}
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, errBodyTooLarge):
		p.refuseBody(ctx)
		return nil, false
	case errors.As(err, &ne) && ne.Timeout():
		p.errorJSON(ctx, fasthttp.StatusRequestTimeout, "request_timeout", "request body not received in time")
	default:
		p.errorJSON(ctx, fasthttp.StatusBadRequest, "bad_request", "malformed request body")
	}
	ctx.SetConnectionClose()
	p.log.Info("request body not read", zap.Error(err), zap.String("client", ctx.RemoteIP().String()))
	return nil, false
}

var errBodyTooLarge = errors.New("request body too large")
