package proxy

import (
	"github.com/valyala/fasthttp"

	"edgecache/cachepolicy"
)

// Range requests are answered from stored complete responses (RFC 9110
// §14, RFC 9111 §3.3–3.4): a fill never forwards Range (originRequest), so
// what is stored is the whole, and a 206 from the origin is never stored
// (cachepolicy.Storable) nor turned into a full answer. Several ranges are
// answered as multipart/byteranges (RFC 9110 §14.6), coalesced where they
// overlap or touch; more than cachepolicy.MaxRanges, or a field that is not
// valid, get the whole (200).

// rangeOf evaluates the request's Range against the entry: only for a GET
// whose answer would be the stored 200 (RFC 9110 §14.2), and only when
// If-Range, if any, matches (§13.1.5). It does not allocate when dst has
// room for cachepolicy.MaxRanges.
func rangeOf(ctx *fasthttp.RequestCtx, e *entry, dst []cachepolicy.ByteRange) ([]cachepolicy.ByteRange, cachepolicy.RangeAnswer) {
	h := &ctx.Request.Header
	v := h.PeekCanonical(hdrRange)
	if len(v) == 0 || !ctx.IsGet() || e.Meta.Status != fasthttp.StatusOK || !e.Meta.IfRange(h.PeekCanonical(hdrIfRange)) {
		return dst, cachepolicy.RangeFull
	}
	return cachepolicy.ParseRange(v, int64(len(e.Body)), dst)
}

// answerRange sets the body of a 206 from the stored body: one part with
// its Content-Range, or multipart/byteranges with a part per range. The
// status and the stored fields are set by deliver (without Content-Type
// for multipart: each part carries it).
func answerRange(ctx *fasthttp.RequestCtx, e *entry, ranges []cachepolicy.ByteRange) {
	out := &ctx.Response
	length := int64(len(e.Body))
	if len(ranges) == 1 {
		var buf [64]byte
		r := ranges[0]
		out.Header.SetBytesV("Content-Range", cachepolicy.AppendContentRange(buf[:0], r, length))
		out.SetBodyRaw(e.Body[r.First : r.Last+1])
		return
	}
	boundary := cachepolicy.AppendBoundary(nil, e.Body)
	size := 0
	for _, r := range ranges {
		size += int(r.Len()) + 128
	}
	body := cachepolicy.AppendMultipartByteranges(make([]byte, 0, size), e.Body, ranges, firstValue(e.Headers, "Content-Type"), boundary)
	out.Header.SetContentType("multipart/byteranges; boundary=" + string(boundary))
	out.SetBodyRaw(body)
}

// unsatisfiable answers 416 to a Range no byte of the stored response
// satisfies (RFC 9110 §15.5.17), with Content-Range: bytes */length. It is
// an error answer in the project's JSON shape, never stored downstream
// (Cache-Control: no-store), and the stored response's fields are not
// sent: they describe the whole, not this answer.
func (p *Proxy) unsatisfiable(ctx *fasthttp.RequestCtx, e *entry, cs *cachepolicy.CacheStatus) {
	p.errorJSON(ctx, fasthttp.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable", "no byte of the requested range exists")
	var buf [160]byte
	ctx.Response.Header.SetBytesV("Content-Range", cachepolicy.AppendUnsatisfiedRange(buf[:0], int64(len(e.Body))))
	ctx.Response.Header.SetBytesV("Cache-Status", cs.Append(buf[:0]))
}
