package cachepolicy

import (
	"bytes"
	"strconv"
)

// Range requests (RFC 9110 §14) answered from a stored complete response.
// The proxy never stores a 206 (Storable) and fills with the Range field
// removed, so every stored response is complete and ranges are cut from it.

// ByteRange is a satisfiable range of a representation: the bytes First
// through Last, inclusive (RFC 9110 §14.1.2).
type ByteRange struct{ First, Last int64 }

// Len is the number of bytes in the range.
func (r ByteRange) Len() int64 { return r.Last - r.First + 1 }

// RangeAnswer is how to answer a Range request from a complete
// representation.
type RangeAnswer uint8

const (
	// RangeFull ignores the Range field: 200 with the whole representation
	// (not a bytes range, not valid, or more ranges than MaxRanges).
	RangeFull RangeAnswer = iota
	// RangePartial is 206 with the ranges: one part with Content-Range, or
	// multipart/byteranges for several.
	RangePartial
	// RangeUnsatisfiable is 416 with Content-Range: bytes */length
	// (AppendUnsatisfiedRange).
	RangeUnsatisfiable
)

var rangeAnswerNames = [...]string{"full", "partial", "unsatisfiable"}

func (a RangeAnswer) String() string {
	if int(a) < len(rangeAnswerNames) {
		return rangeAnswerNames[a]
	}
	return "unknown"
}

// MaxRanges is the most range-specs a Range field may list to be honoured;
// a field with more is ignored (RFC 9110 §14.2 lets a server ignore a set
// of many small ranges), so a request cannot make one answer many times
// the size of the representation.
const MaxRanges = 16

// ParseRange evaluates a Range field value (RFC 9110 §14.1.1, §14.2) against
// a representation of length bytes, appending the ranges to send to dst.
// It does not allocate when dst has room for MaxRanges ranges. The caller
// applies it only to a GET whose answer would otherwise be 200, after the
// preconditions (If-None-Match, If-Modified-Since) and If-Range
// (Meta.IfRange); HEAD ignores Range.
//
//   - The unit is "bytes", in any case; another unit, a syntax error
//     anywhere in the set, or a range whose last-pos is below its first-pos
//     makes the field invalid: RangeFull.
//   - A range-spec is satisfiable when its first-pos is below length, or it
//     is a suffix-range with a non-zero suffix-length; last-pos and suffix
//     lengths beyond the end are cut to it. No satisfiable range:
//     RangeUnsatisfiable. An empty representation has no byte to send: a
//     non-zero suffix-range gives RangeFull (the whole, empty), anything
//     else RangeUnsatisfiable.
//   - The satisfiable ranges are sorted and those that overlap or touch
//     are coalesced (§14.6 allows both), so the answer never carries a byte
//     twice.
func ParseRange(v []byte, length int64, dst []ByteRange) ([]ByteRange, RangeAnswer) {
	v = trimSpace(v)
	if len(v) < 6 || !EqualFold(v[:5], "bytes") || v[5] != '=' {
		return dst, RangeFull
	}
	base := len(dst)
	specs, emptySuffix := 0, false
	for i := 6; i < len(v); {
		// 1#range-spec: empty list elements and OWS around commas are
		// allowed (RFC 9110 §5.6.1); at least one element is required.
		for i < len(v) && (v[i] == ',' || isSpace(v[i])) {
			i++
		}
		if i == len(v) {
			break
		}
		first, last, next, ok := rangeSpec(v, i)
		if !ok {
			return dst[:base], RangeFull
		}
		i = next
		if specs++; specs > MaxRanges {
			return dst[:base], RangeFull
		}
		switch {
		case first < 0: // suffix-range: the last `last` bytes
			if last == 0 {
				continue
			}
			if length == 0 {
				emptySuffix = true
				continue
			}
			dst = append(dst, ByteRange{First: max(0, length-last), Last: length - 1})
		case last >= 0 && last < first:
			return dst[:base], RangeFull // invalid range-spec
		case first >= length:
			// unsatisfiable; other ranges may still be
		default:
			if last < 0 || last >= length {
				last = length - 1
			}
			dst = append(dst, ByteRange{First: first, Last: last})
		}
	}
	if specs == 0 {
		return dst[:base], RangeFull
	}
	if len(dst) == base {
		if emptySuffix {
			return dst[:base], RangeFull
		}
		return dst[:base], RangeUnsatisfiable
	}
	return dst[:base+coalesce(dst[base:])], RangePartial
}

// rangeSpec parses the range-spec at v[i] and the OWS after it, up to a
// comma or the end: first is -1 for a suffix-range, last -1 when the spec
// has none ("5-").
func rangeSpec(v []byte, i int) (first, last int64, next int, ok bool) {
	first, last = -1, -1
	if v[i] != '-' {
		if first, i, ok = rangeNumber(v, i); !ok {
			return 0, 0, i, false
		}
	}
	if i >= len(v) || v[i] != '-' {
		return 0, 0, i, false
	}
	i++
	if i < len(v) && isDigit(v[i]) {
		last, i, _ = rangeNumber(v, i)
	} else if first < 0 {
		return 0, 0, i, false // "-" alone
	}
	i = skipOWS(v, i)
	if i < len(v) && v[i] != ',' {
		return 0, 0, i, false
	}
	return first, last, i, true
}

// coalesce sorts ranges by their first byte (an insertion sort: there are
// at most MaxRanges) and merges those that overlap or touch, in place. It
// returns how many ranges are left.
func coalesce(ranges []ByteRange) int {
	for i := 1; i < len(ranges); i++ {
		for j := i; j > 0 && ranges[j].First < ranges[j-1].First; j-- {
			ranges[j], ranges[j-1] = ranges[j-1], ranges[j]
		}
	}
	n := 0
	for _, r := range ranges {
		if n > 0 && r.First <= ranges[n-1].Last+1 {
			ranges[n-1].Last = max(ranges[n-1].Last, r.Last)
			continue
		}
		ranges[n] = r
		n++
	}
	return n
}

// rangeNumber parses 1*DIGIT at v[i], saturating at 2^62 (larger than any
// representation).
func rangeNumber(v []byte, i int) (n int64, next int, ok bool) {
	start := i
	for i < len(v) && isDigit(v[i]) {
		if n <= 1<<62/10 {
			n = n*10 + int64(v[i]-'0')
		} else {
			n = 1 << 62
		}
		i++
	}
	return min(n, 1<<62), i, i > start
}

// IfRange reports whether a Range request carrying this If-Range value (nil
// when absent) may be answered with part of this entry (RFC 9110 §13.1.5);
// false means the Range field is ignored and the whole is sent. An
// entity-tag must match the entry's ETag strongly (a weak one never
// matches); an HTTP-date must equal the entry's Last-Modified, which must
// be a strong validator (at least a second before Date, §8.8.2.2). It does
// not allocate.
func (m *Meta) IfRange(v []byte) bool {
	v = trimSpace(v)
	if len(v) == 0 {
		return true
	}
	if v[0] == '"' || isWeak(v) {
		return strongMatch(m.ETag, v)
	}
	t, ok := ParseHTTPDate(v)
	if !ok {
		return false
	}
	lm, strong := m.strongLastModified()
	return strong && lm == t
}

// AppendContentRange appends the Content-Range value of one part:
// "bytes first-last/length".
func AppendContentRange(dst []byte, r ByteRange, length int64) []byte {
	dst = append(dst, "bytes "...)
	dst = strconv.AppendInt(dst, r.First, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, r.Last, 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, length, 10)
}

// AppendUnsatisfiedRange appends the Content-Range value of a 416:
// "bytes */length" (RFC 9110 §14.4).
func AppendUnsatisfiedRange(dst []byte, length int64) []byte {
	dst = append(dst, "bytes */"...)
	return strconv.AppendInt(dst, length, 10)
}

// AppendBoundary appends a multipart boundary that does not occur in body
// (RFC 2046 §5.1.1): "edgecache-" and 16 hex digits derived from the body,
// so the same body always gets the same boundary.
func AppendBoundary(dst, body []byte) []byte {
	h := uint64(14695981039346656037) // FNV-1a
	for _, c := range body {
		h = (h ^ uint64(c)) * 1099511628211
	}
	start := len(dst)
	for {
		dst = append(dst[:start], "edgecache-"...)
		for s := 60; s >= 0; s -= 4 {
			dst = append(dst, "0123456789abcdef"[h>>uint(s)&15])
		}
		if !bytes.Contains(body, dst[start:]) {
			return dst
		}
		h = (h ^ 0xff) * 1099511628211
	}
}

// AppendMultipartByteranges appends the body of a multipart/byteranges
// answer (RFC 9110 §14.6) with one part per range of body, each with the
// representation's Content-Type (omitted when empty) and its
// Content-Range. The answer's own Content-Type is
// "multipart/byteranges; boundary=" + boundary (AppendBoundary).
func AppendMultipartByteranges(dst, body []byte, ranges []ByteRange, contentType, boundary []byte) []byte {
	length := int64(len(body))
	for i, r := range ranges {
		if i > 0 {
			dst = append(dst, "\r\n"...)
		}
		dst = append(dst, "--"...)
		dst = append(dst, boundary...)
		dst = append(dst, "\r\n"...)
		if len(contentType) > 0 {
			dst = append(dst, "Content-Type: "...)
			dst = append(dst, contentType...)
			dst = append(dst, "\r\n"...)
		}
		dst = append(dst, "Content-Range: "...)
		dst = AppendContentRange(dst, r, length)
		dst = append(dst, "\r\n\r\n"...)
		dst = append(dst, body[r.First:r.Last+1]...)
	}
	dst = append(dst, "\r\n--"...)
	dst = append(dst, boundary...)
	return append(dst, "--\r\n"...)
}
