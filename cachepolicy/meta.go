package cachepolicy

import (
	"encoding/binary"
	"errors"
	"time"
)

// Meta is the caching metadata of a stored response: everything the rules
// need to answer a later request without re-reading the stored headers.
// Times are Unix seconds; durations are seconds in [0, MaxDelta].
type Meta struct {
	Status       int
	RequestTime  int64 // when the request that got this response was sent
	ResponseTime int64 // when the response was received
	Date         int64 // the Date field; ResponseTime when absent or invalid
	AgeValue     int64 // the Age field; 0 when absent or invalid
	Lifetime     int64 // freshness lifetime (RFC 9111 §4.2.1)

	// Staleness the response itself allows (RFC 5861). Both are 0 when the
	// response has must-revalidate or proxy-revalidate.
	StaleWhileRevalidate int64
	StaleIfError         int64

	NoCache bool // unqualified no-cache: every reuse is validated first
	// MustRevalidate is set by must-revalidate, proxy-revalidate and
	// s-maxage (which implies proxy-revalidate, §5.2.2.10). Once stale the
	// entry is then served only as the response's own
	// stale-while-revalidate / stale-if-error allow, never under a client's
	// max-stale or stale-if-error.
	MustRevalidate bool
	Heuristic      bool // Lifetime was computed heuristically (§4.2.2)
	Immutable      bool // immutable (RFC 8246): while fresh, clients cannot force revalidation

	ETag         []byte // the ETag field value, as received
	LastModified []byte // the Last-Modified field value, as received
	Vary         []byte // canonical Vary field names (AppendVary): "accept-encoding,accept-language"
}

// HeuristicFraction and HeuristicMax bound heuristic freshness (RFC 9111
// §4.2.2): 10% of the time since Last-Modified, at most one day.
const (
	HeuristicFraction = 10 // percent
	HeuristicMax      = 24 * 60 * 60
)

// timeLimit bounds every time this package does arithmetic with (about
// year 36800), so sums and differences of two times cannot overflow.
const timeLimit = 1 << 40

func clampTime(t int64) int64 { return min(max(t, -timeLimit), timeLimit) }

// NewMeta computes the metadata of resp, received at responseTime for a
// request sent at requestTime. Call it for a storable response (Storable),
// and again after merging a 304's or HEAD response's fields into the stored
// ones (with the stored Status and the new times). ETag and LastModified
// alias resp; Vary is a new canonical copy (nil when there is no Vary).
//
// Freshness lifetime, for a shared cache: s-maxage, else max-age, else
// Expires − Date (an invalid Expires means already expired; Expires is
// ignored when the directives came from a targeted field), else, for a
// heuristically cacheable status or an explicit public, 10% of
// Date − Last-Modified capped at HeuristicMax, else 0.
func NewMeta(resp *Response, requestTime, responseTime time.Time) Meta {
	cc := &resp.CacheControl
	m := Meta{
		Status:       resp.Status,
		RequestTime:  clampTime(requestTime.Unix()),
		ResponseTime: clampTime(responseTime.Unix()),
		ETag:         resp.ETag,
		LastModified: resp.LastModified,
		NoCache:      cc.Has(NoCache),
		Immutable:    cc.Has(Immutable),
	}
	m.Date = m.ResponseTime
	if d, ok := ParseHTTPDate(resp.Date); ok {
		m.Date = d
	}
	m.AgeValue, _ = ParseAge(resp.Age)

	switch {
	case cc.Has(HasSMaxAge):
		m.Lifetime = cc.SMaxAge
	case cc.Has(HasMaxAge):
		m.Lifetime = cc.MaxAge
	case len(resp.Expires) > 0 && !cc.Has(Targeted):
		if exp, ok := ParseHTTPDate(resp.Expires); ok {
			m.Lifetime = min(max(exp-m.Date, 0), MaxDelta)
		}
	case heuristicStatus(resp.Status) || cc.Has(Public):
		if lm, ok := ParseHTTPDate(resp.LastModified); ok && lm < m.Date {
			m.Lifetime = min((m.Date-lm)*HeuristicFraction/100, HeuristicMax)
			m.Heuristic = true
		}
	}

	m.MustRevalidate = cc.Flags&(MustRevalidate|ProxyRevalidate|HasSMaxAge) != 0
	if cc.Flags&(MustRevalidate|ProxyRevalidate) == 0 {
		if cc.Has(HasStaleWhileRevalidate) {
			m.StaleWhileRevalidate = cc.StaleWhileRevalidate
		}
		if cc.Has(HasStaleIfError) {
			m.StaleIfError = cc.StaleIfError
		}
	}
	if len(resp.Vary) > 0 {
		m.Vary, _ = AppendVary(nil, resp.Vary)
	}
	return m
}

// Binary form (all integers varint or uvarint):
//
//	version(1) flags(1) status requestTime responseTime date age lifetime
//	swr sie len(etag) etag len(lastModified) lastModified len(vary) vary
const metaVersion = 1

const (
	flagNoCache = 1 << iota
	flagMustRevalidate
	flagHeuristic
	flagImmutable
	flagAll = flagNoCache | flagMustRevalidate | flagHeuristic | flagImmutable
)

// maxMetaField bounds each stored validator and the Vary list.
const maxMetaField = 8 << 10

// ErrCorruptMeta is returned when stored metadata cannot be decoded.
var ErrCorruptMeta = errors.New("cachepolicy: corrupt entry metadata")

// AppendBinary appends the compact binary form of m to b
// (encoding.BinaryAppender). Out-of-range times and durations are clamped
// (as NewMeta does); a status outside 100..999 or a field over 8 KiB is an
// error.
func (m *Meta) AppendBinary(b []byte) ([]byte, error) {
	if len(m.ETag) > maxMetaField || len(m.LastModified) > maxMetaField || len(m.Vary) > maxMetaField {
		return b, errors.New("cachepolicy: entry metadata field too long")
	}
	if m.Status < 100 || m.Status > 999 {
		return b, errors.New("cachepolicy: entry metadata status out of range")
	}
	var flags byte
	if m.NoCache {
		flags |= flagNoCache
	}
	if m.MustRevalidate {
		flags |= flagMustRevalidate
	}
	if m.Heuristic {
		flags |= flagHeuristic
	}
	if m.Immutable {
		flags |= flagImmutable
	}
	b = append(b, metaVersion, flags)
	b = binary.AppendUvarint(b, uint64(m.Status))
	for _, t := range [...]int64{m.RequestTime, m.ResponseTime, m.Date} {
		b = binary.AppendVarint(b, clampTime(t))
	}
	for _, d := range [...]int64{m.AgeValue, m.Lifetime, m.StaleWhileRevalidate, m.StaleIfError} {
		b = binary.AppendUvarint(b, uint64(min(max(d, 0), MaxDelta)))
	}
	for _, f := range [...][]byte{m.ETag, m.LastModified, m.Vary} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// MarshalBinary returns the compact binary form of m.
func (m *Meta) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 64+len(m.ETag)+len(m.LastModified)+len(m.Vary)))
}

// UnmarshalBinary decodes the whole of b into m, copying what it keeps.
func (m *Meta) UnmarshalBinary(b []byte) error {
	d, n, err := ReadMeta(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return ErrCorruptMeta
	}
	buf := make([]byte, 0, len(d.ETag)+len(d.LastModified)+len(d.Vary))
	d.ETag, buf = keep(buf, d.ETag)
	d.LastModified, buf = keep(buf, d.LastModified)
	d.Vary, _ = keep(buf, d.Vary)
	*m = d
	return nil
}

func keep(buf, f []byte) ([]byte, []byte) {
	if f == nil {
		return nil, buf
	}
	start := len(buf)
	buf = append(buf, f...)
	return buf[start:len(buf):len(buf)], buf
}

// ReadMeta decodes metadata from the start of b, for a stored entry that
// carries more after it, and returns the number of bytes it used. ETag,
// LastModified and Vary alias b. Corrupt input returns ErrCorruptMeta:
// unknown version or flags, truncation, out-of-range numbers, field values
// with control characters, a Vary list that is not canonical field names.
func ReadMeta(b []byte) (Meta, int, error) {
	var m Meta
	if len(b) < 2 || b[0] != metaVersion || b[1]&^flagAll != 0 {
		return Meta{}, 0, ErrCorruptMeta
	}
	flags := b[1]
	m.NoCache = flags&flagNoCache != 0
	m.MustRevalidate = flags&flagMustRevalidate != 0
	m.Heuristic = flags&flagHeuristic != 0
	m.Immutable = flags&flagImmutable != 0
	r := metaReader{b: b, i: 2}
	status := r.uvarint(999)
	m.Status = int(status)
	m.RequestTime = r.time()
	m.ResponseTime = r.time()
	m.Date = r.time()
	m.AgeValue = int64(r.uvarint(MaxDelta))
	m.Lifetime = int64(r.uvarint(MaxDelta))
	m.StaleWhileRevalidate = int64(r.uvarint(MaxDelta))
	m.StaleIfError = int64(r.uvarint(MaxDelta))
	m.ETag = r.field()
	m.LastModified = r.field()
	m.Vary = r.field()
	if r.bad || status < 100 || !fieldValue(m.ETag) || !fieldValue(m.LastModified) || !canonicalVary(m.Vary) {
		return Meta{}, 0, ErrCorruptMeta
	}
	return m, r.i, nil
}

type metaReader struct {
	b   []byte
	i   int
	bad bool
}

func (r *metaReader) uvarint(limit uint64) uint64 {
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 || v > limit {
		r.bad = true
		return 0
	}
	r.i += n
	return v
}

func (r *metaReader) time() int64 {
	v, n := binary.Varint(r.b[r.i:])
	if n <= 0 || v > timeLimit || v < -timeLimit {
		r.bad = true
		return 0
	}
	r.i += n
	return v
}

func (r *metaReader) field() []byte {
	n := r.uvarint(maxMetaField)
	if r.bad || n > uint64(len(r.b)-r.i) {
		r.bad = true
		return nil
	}
	if n == 0 {
		return nil
	}
	f := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return f
}

// fieldValue reports whether f can be sent as a field value: no control
// characters other than horizontal tab (so a corrupt entry can never inject
// a header line into a conditional request).
func fieldValue(f []byte) bool {
	for _, c := range f {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
