package origin

import (
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/proxy/accesslog"
)

// errorKey is the request's user value that holds the *apiError it was
// answered with (writeError, writeAbsent), for its access log line.
const errorKey = "origin.error"

// logRequest writes the request's access log line, in the format zap's
// JSON encoder wrote it (accesslog.Log.WriteOrigin says which fields), at
// a tenth of zap's cost. path is the decoded path; the strings may be
// fasthttp's buffers, read before the request ends. A write error is the
// destination's, reported once per failed flush.
func (s *Server) logRequest(ctx *fasthttp.RequestCtx, route, path string, status int, began, end time.Time) {
	if s.access == nil {
		return
	}
	var errCode, errMessage string
	if e, ok := ctx.UserValue(errorKey).(*apiError); ok {
		errCode, errMessage = e.code, e.message
	}
	var remote [64]byte
	err := s.access.WriteOrigin(&accesslog.OriginRequest{Time: end, Method: unsafeString(ctx.Method()), Path: path,
		Query: unsafeString(ctx.URI().QueryString()), Route: route, Status: status, Bytes: len(ctx.Response.Body()),
		Duration: end.Sub(began), Remote: unsafeString(appendRemote(remote[:0], ctx.RemoteAddr())), Fresh: wantsFresh(ctx),
		ErrorCode: errCode, Error: errMessage})
	if err != nil {
		s.log.Warn("access log", zap.Error(err))
	}
}

// appendRemote appends a TCP peer's address as net.TCPAddr.String writes
// it ("1.2.3.4:5", "[::1]:5"), without its two allocations a request.
func appendRemote(b []byte, addr net.Addr) []byte {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return append(b, addr.String()...)
	}
	ap := tcp.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).AppendTo(b)
}
