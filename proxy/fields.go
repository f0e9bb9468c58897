package proxy

import (
	"bufio"
	"bytes"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/cachepolicy"
	"edgecache/proxy/store"
)

// Header fields of origin responses, as the caching rules read them and as
// entries keep them, and the Date of the answers the proxy writes.

// startResponse starts the response header h over, for an answer whose
// Date field is date: the origin's, for a stored or forwarded response (RFC
// 9110 §6.6.1: a cache passes the origin's Date on; Age says how long the
// response was stored). With no date, fasthttp writes its own clock's: for
// an answer the proxy makes itself, or one from an origin that sent none.
// Call it before anything else is set on h.
//
// Why a parse: fasthttp (v1.78 header.go, ResponseHeader.setSpecialHeader)
// drops a Date set through Set or Add ("Date is managed automatically");
// with the server's NoDefaultDate false it writes its own Date instead of
// any other, and with NoDefaultDate true it writes a Date only if one came
// in by parsing a header block (ResponseHeader.AppendBytes). So the server
// runs with NoDefaultDate true, and this reads a one-field header block
// holding the Date into h, through a pooled reader: no allocation. Without
// a date it calls Reset, which turns fasthttp's own Date back on for this
// response (and keeps the server's NoDefaultContentType).
func startResponse(h *fasthttp.ResponseHeader, date []byte) {
	date = bytes.TrimSpace(date)
	if len(date) > 0 && store.ValidFieldValue(date) {
		r := dateReaders.Get().(*dateReader)
		r.buf = append(append(append(r.buf[:0], "HTTP/1.1 200 OK\r\nDate: "...), date...), "\r\n\r\n"...)
		r.rd.Reset(r.buf)
		r.br.Reset(&r.rd)
		err := h.Read(r.br)
		dateReaders.Put(r)
		if err == nil {
			// Undo what parsing the block implies: its status line would
			// be written back as read ("200 OK" for any status), and a
			// 200 without Content-Length reads as a body up to the
			// close, so fasthttp would close the connection. The body
			// set later gives the length.
			h.SetStatusMessage(nil)
			h.SetProtocol(nil)
			h.Del(fasthttp.HeaderContentLength)
			h.Del(fasthttp.HeaderConnection)
			return
		}
	}
	h.Reset()
	h.SetNoDefaultContentType(true)
}

type dateReader struct {
	buf []byte
	rd  bytes.Reader
	br  *bufio.Reader
}

var dateReaders = sync.Pool{New: func() any {
	r := &dateReader{buf: make([]byte, 0, 64)}
	r.br = bufio.NewReaderSize(&r.rd, 128)
	return r
}}

// Field names in canonical form, for the fields every hit sets (Age and
// Cache-Status, through SetCanonical) or reads from the request (through
// PeekCanonical): both take a name as it is, where Set and Peek copy and
// normalise it on every call (Peek 67 ns, PeekCanonical 19 ns).
var (
	hdrSetCookie       = []byte("Set-Cookie")
	hdrAge             = []byte("Age")
	hdrCacheStatus     = []byte("Cache-Status")
	hdrIfNoneMatch     = []byte("If-None-Match")
	hdrIfModifiedSince = []byte("If-Modified-Since")
	hdrRange           = []byte("Range")
	hdrIfRange         = []byte("If-Range")
)

// responseFields copies the header fields of an origin response, in order,
// Set-Cookie lines included. Nothing is made up: without a Content-Type
// from the origin there is none (fasthttp would otherwise yield its default
// "text/plain; charset=utf-8"). Trailer fields are not among them (RFC 9111
// §3.1 lets a cache discard them).
func responseFields(resp *fasthttp.Response) []field {
	resp.Header.SetNoDefaultContentType(true)
	size := 0
	for k, v := range resp.Header.All() {
		size += len(k) + len(v)
	}
	// One buffer for every name and value: a fill copies a response's
	// fields, and two allocations per field were most of its own.
	buf := make([]byte, 0, size)
	fields := make([]field, 0, resp.Header.Len())
	for k, v := range resp.Header.All() {
		n := len(buf)
		buf = append(buf, k...)
		buf = append(buf, v...)
		fields = append(fields, field{Name: buf[n : n+len(k) : n+len(k)], Value: buf[n+len(k) : len(buf) : len(buf)]})
	}
	return fields
}

// firstValue is the value of the first field named name, nil if none.
func firstValue(fields []field, name string) []byte {
	for _, f := range fields {
		if cachepolicy.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return nil
}

// joinedValue is the values of every field named name joined with ", "
// (RFC 9110 §5.3: a list field sent over several lines is one list), nil
// if none. A single line is returned as it is.
func joinedValue(fields []field, name string) []byte {
	var v []byte
	n := 0
	for _, f := range fields {
		if !cachepolicy.EqualFold(f.Name, name) {
			continue
		}
		switch n++; n {
		case 1:
			v = f.Value
		case 2:
			v = append(append(append([]byte(nil), v...), ", "...), f.Value...)
		default:
			v = append(append(v, ", "...), f.Value...)
		}
	}
	return v
}

// fieldRules extracts what cachepolicy needs from a response's fields. The
// list fields (Cache-Control, the targeted fields, Vary, Age) are joined
// over all their lines, so that `s-maxage` on one line and `max-age` on
// another are both seen, and a `*` on any Vary line counts; the singletons
// take their first line.
func (p *Proxy) fieldRules(status int, fields []field) cachepolicy.Response {
	return cachepolicy.Response{
		Status: status,
		CacheControl: cachepolicy.ResponseDirectives(joinedValue(fields, p.cfg.TargetedField),
			joinedValue(fields, "CDN-Cache-Control"), joinedValue(fields, "Cache-Control")),
		Expires:      firstValue(fields, "Expires"),
		Date:         firstValue(fields, "Date"),
		LastModified: firstValue(fields, "Last-Modified"),
		Age:          joinedValue(fields, "Age"),
		ETag:         firstValue(fields, "ETag"),
		Vary:         joinedValue(fields, "Vary"),
		SetCookie:    firstValue(fields, "Set-Cookie") != nil,
	}
}

// storedFields is what an entry keeps of a response's fields: those
// FieldRules.Store allows, without Content-Length (the stored body sets
// it), with a Date. A response that came without Date gets the time it was
// received (RFC 9110 §6.6.1: a recipient with a clock MUST add one to a
// response it stores), so that every answer from the entry carries the
// same Date and Age grows from it.
func (p *Proxy) storedFields(fields []field, cc *cachepolicy.Directives, received time.Time) []field {
	conn := joinedValue(fields, "Connection")
	out := make([]field, 0, len(fields)+1)
	for _, f := range fields {
		if p.rules.Store(f.Name, conn, cc) && !cachepolicy.EqualFold(f.Name, "Content-Length") {
			out = append(out, f)
		}
	}
	if firstValue(out, "Date") == nil {
		out = append(out, field{Name: []byte("Date"), Value: fasthttp.AppendHTTPDate(nil, received)})
	}
	return out
}

// mergeFields applies the fields of a 304 or HEAD response to stored ones
// (RFC 9111 §4.3.4, §4.3.5): each field name FieldRules.Update allows
// replaces every stored line of that name with all of its own lines.
func (p *Proxy) mergeFields(stored, update []field, cc *cachepolicy.Directives) []field {
	conn := joinedValue(update, "Connection")
	merged := append(make([]field, 0, len(stored)+len(update)), stored...)
	for i, f := range update {
		if !p.rules.Update(f.Name, conn, cc) {
			continue
		}
		first := true
		for _, g := range update[:i] {
			if cachepolicy.EqualFold(g.Name, string(f.Name)) {
				first = false
				break
			}
		}
		if first {
			kept := merged[:0]
			for _, g := range merged {
				if !cachepolicy.EqualFold(g.Name, string(f.Name)) {
					kept = append(kept, g)
				}
			}
			merged = kept
		}
		merged = append(merged, f)
	}
	return merged
}
