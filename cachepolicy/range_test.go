package cachepolicy

import (
	"bytes"
	"fmt"
	"mime"
	"mime/multipart"
	"strings"
	"testing"
)

// TestParseRange: RFC 9110 §14.1.1 (syntax, satisfiable ranges), §14.2
// (invalid fields are ignored), §14.6 (coalescing).
func TestParseRange(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		length int64
		want   RangeAnswer
		ranges string // "first-last ..." of the ranges sent
	}{
		{"byte range", "bytes=0-499", 1000, RangePartial, "0-499"},
		{"last-pos beyond the end is cut", "bytes=500-5000", 1000, RangePartial, "500-999"},
		{"open-ended", "bytes=900-", 1000, RangePartial, "900-999"},
		{"suffix", "bytes=-100", 1000, RangePartial, "900-999"},
		{"suffix longer than the representation", "bytes=-5000", 1000, RangePartial, "0-999"},
		{"single byte", "bytes=0-0", 1000, RangePartial, "0-0"},
		{"last byte", "bytes=999-999", 1000, RangePartial, "999-999"},
		{"unit in any case", "Bytes=0-1", 10, RangePartial, "0-1"},
		{"OWS around commas", "bytes=0-1 ,\t5-6", 10, RangePartial, "0-1 5-6"},
		{"empty list elements", "bytes=,0-1,,5-6,", 10, RangePartial, "0-1 5-6"},
		{"multiple ranges", "bytes=0-1,5-6", 10, RangePartial, "0-1 5-6"},
		{"sorted", "bytes=5-6,0-1", 10, RangePartial, "0-1 5-6"},
		{"overlapping coalesced", "bytes=0-4,2-7", 10, RangePartial, "0-7"},
		{"adjacent coalesced", "bytes=0-4,5-7", 10, RangePartial, "0-7"},
		{"the same range twice", "bytes=0-,0-,0-", 10, RangePartial, "0-9"},
		{"suffix and range coalesced", "bytes=-3,0-6", 10, RangePartial, "0-9"},
		{"unsatisfiable ones dropped", "bytes=20-30,0-1", 10, RangePartial, "0-1"},
		{"first-pos at the end", "bytes=10-", 10, RangeUnsatisfiable, ""},
		{"first-pos beyond the end", "bytes=20-30", 10, RangeUnsatisfiable, ""},
		{"zero suffix", "bytes=-0", 10, RangeUnsatisfiable, ""},
		{"empty representation, range", "bytes=0-5", 0, RangeUnsatisfiable, ""},
		{"empty representation, suffix", "bytes=-5", 0, RangeFull, ""},
		{"huge numbers saturate", "bytes=0-99999999999999999999999", 10, RangePartial, "0-9"},
		{"huge first-pos", "bytes=99999999999999999999999-", 10, RangeUnsatisfiable, ""},
		{"huge suffix", "bytes=-9227000000000000000", 10, RangePartial, "0-9"},
		{"no Range", "", 10, RangeFull, ""},
		{"other unit", "items=0-1", 10, RangeFull, ""},
		{"unit without =", "bytes 0-1", 10, RangeFull, ""},
		{"no range-spec", "bytes=", 10, RangeFull, ""},
		{"only commas", "bytes=,,", 10, RangeFull, ""},
		{"dash alone", "bytes=-", 10, RangeFull, ""},
		{"last below first is invalid", "bytes=5-1", 10, RangeFull, ""},
		{"one invalid spec voids the set", "bytes=0-1,5-1", 10, RangeFull, ""},
		{"space inside a spec", "bytes=0 -1", 10, RangeFull, ""},
		{"garbage after a spec", "bytes=0-1x", 10, RangeFull, ""},
		{"negative", "bytes=--1", 10, RangeFull, ""},
		{"sign", "bytes=+1-2", 10, RangeFull, ""},
		{"other-range", "bytes=a-b", 10, RangeFull, ""},
		{"at most MaxRanges", "bytes=" + strings.Repeat("0-0,", MaxRanges), 10, RangePartial, "0-0"},
		{"more than MaxRanges ignored", "bytes=" + strings.Repeat("0-0,", MaxRanges+1), 10, RangeFull, ""},
	}
	for _, tt := range tests {
		var buf [MaxRanges]ByteRange
		got, a := ParseRange([]byte(tt.in), tt.length, buf[:0])
		var s []string
		for _, r := range got {
			s = append(s, fmt.Sprintf("%d-%d", r.First, r.Last))
		}
		if a != tt.want || strings.Join(s, " ") != tt.ranges {
			t.Errorf("%s: ParseRange(%q, %d) = %v %q; want %v %q", tt.name, tt.in, tt.length, a, s, tt.want, tt.ranges)
		}
	}
}

// TestIfRange: RFC 9110 §13.1.5: a strong entity-tag match or an exact,
// strong Last-Modified date; anything else sends the whole.
func TestIfRange(t *testing.T) {
	date, _ := ParseHTTPDate([]byte(lm))
	tests := []struct {
		name, etag, ifRange string
		weakLM, want        bool
	}{
		{"absent", `"a"`, "", false, true},
		{"same strong etag", `"a"`, `"a"`, false, true},
		{"other etag", `"a"`, `"b"`, false, false},
		{"weak etag in If-Range", `"a"`, `W/"a"`, false, false},
		{"weak stored etag", `W/"a"`, `"a"`, false, false},
		{"no stored etag", "", `"a"`, false, false},
		{"same date", `"a"`, lm, false, true},
		{"same date, other format", `"a"`, "Sunday, 06-Nov-94 08:49:37 GMT", false, true},
		{"later date", `"a"`, "Mon, 07 Nov 1994 08:49:37 GMT", false, false},
		{"weak last-modified", `"a"`, lm, true, false},
		{"not a date", `"a"`, "yesterday", false, false},
	}
	for _, tt := range tests {
		m := Meta{Status: 200, ETag: bytesOrNil(tt.etag), LastModified: []byte(lm), Date: date + 3600}
		if tt.weakLM {
			m.Date = date
		}
		if got := m.IfRange(bytesOrNil(tt.ifRange)); got != tt.want {
			t.Errorf("%s: IfRange(%q) = %v", tt.name, tt.ifRange, got)
		}
	}
}

func TestContentRange(t *testing.T) {
	if got := string(AppendContentRange(nil, ByteRange{0, 499}, 1234)); got != "bytes 0-499/1234" {
		t.Errorf("AppendContentRange = %q", got)
	}
	if got := string(AppendUnsatisfiedRange(nil, 1234)); got != "bytes */1234" {
		t.Errorf("AppendUnsatisfiedRange = %q", got)
	}
}

// TestMultipartByteranges: the body parses back as multipart/byteranges
// (RFC 9110 §14.6) with the parts and their Content-Range, and the boundary
// never occurs in the representation.
func TestMultipartByteranges(t *testing.T) {
	body := []byte("0123456789abcdefghij")
	ranges := []ByteRange{{0, 1}, {5, 9}, {19, 19}}
	boundary := AppendBoundary(nil, body)
	if again := AppendBoundary(nil, body); !bytes.Equal(again, boundary) {
		t.Errorf("boundary not deterministic: %q %q", boundary, again)
	}
	mp := AppendMultipartByteranges(nil, body, ranges, []byte("text/plain"), boundary)
	checkMultipart(t, mp, string(boundary), body, ranges, "text/plain")

	// A body that contains the first candidate boundary gets another one.
	trap := append([]byte("x"), boundary...)
	b2 := AppendBoundary(nil, trap)
	if bytes.Contains(trap, b2) {
		t.Errorf("boundary %q occurs in the body", b2)
	}
}

func checkMultipart(t *testing.T, mp []byte, boundary string, body []byte, ranges []ByteRange, ct string) {
	t.Helper()
	_, params, err := mime.ParseMediaType("multipart/byteranges; boundary=" + boundary)
	if err != nil {
		t.Fatal(err)
	}
	r := multipart.NewReader(bytes.NewReader(mp), params["boundary"])
	for i, want := range ranges {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v\n%q", i, err, mp)
		}
		got := new(bytes.Buffer)
		got.ReadFrom(p)
		if got.String() != string(body[want.First:want.Last+1]) {
			t.Errorf("part %d: %q", i, got)
		}
		wantCR := string(AppendContentRange(nil, want, int64(len(body))))
		if p.Header.Get("Content-Range") != wantCR || p.Header.Get("Content-Type") != ct {
			t.Errorf("part %d: header %v, want Content-Range %q", i, p.Header, wantCR)
		}
	}
	if _, err := r.NextPart(); err == nil {
		t.Error("more parts than ranges")
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-499", "bytes=-5", "bytes=9-", "bytes=0-1,5-6,3-4", "bytes=,0-1,,", "BYTES=1-1",
		"bytes=99999999999999999999999-", "bytes=5-1", "bytes=-0", "items=1-2"} {
		f.Add([]byte(s), int64(10))
	}
	f.Fuzz(func(t *testing.T, v []byte, length int64) {
		if length < 0 || length > 1<<20 {
			return
		}
		var buf [MaxRanges]ByteRange
		ranges, a := ParseRange(v, length, buf[:0])
		switch a {
		case RangePartial:
			if len(ranges) == 0 || len(ranges) > MaxRanges {
				t.Fatalf("%q: partial with %d ranges", v, len(ranges))
			}
		default:
			if len(ranges) != 0 {
				t.Fatalf("%q: %v with ranges %v", v, a, ranges)
			}
		}
		// Ranges lie inside the representation, ascending, never
		// overlapping or touching.
		for i, r := range ranges {
			if r.First < 0 || r.First > r.Last || r.Last >= length {
				t.Fatalf("%q, length %d: range %v", v, length, r)
			}
			if i > 0 && r.First <= ranges[i-1].Last+1 {
				t.Fatalf("%q: ranges %v not coalesced", v, ranges)
			}
		}
		// The unit is case-insensitive; the answer does not change.
		if _, a2 := ParseRange(asciiUpper(string(v)), length, buf[:0]); len(v) >= 6 && a2 != a {
			t.Fatalf("%q: upper case gives %v, not %v", v, a2, a)
		}
		if a == RangePartial && len(ranges) > 1 {
			body := bytes.Repeat([]byte("0123456789"), int(length/10)+1)[:length]
			boundary := AppendBoundary(nil, body)
			checkMultipart(t, AppendMultipartByteranges(nil, body, ranges, nil, boundary), string(boundary), body, ranges, "")
		}
	})
}

// FuzzParseTargeted: RFC 9213 targeted fields are Structured Field
// Dictionaries (RFC 8941 §4.2.2). A valid one stays valid, with the same
// meaning, when repeated on a second line (later keys replace earlier ones,
// so the copy replaces the original member by member) and after leading
// spaces; an invalid one is ignored entirely.
func FuzzParseTargeted(f *testing.F) {
	for _, s := range []string{"max-age=60", "no-store=?0, max-age=5;a=1", `private=("a" "b"), x=:aGk=:, y=1.5`,
		`no-cache="set-cookie"`, "max-age=60,", `x="a\"b"`, "max-age=10, max-age=60", "a, b=?1, c=tok/en:x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		d, ok := ParseTargeted(v)
		if !ok {
			if !sameDirectives(d, Directives{}) {
				t.Fatalf("%q: invalid, but %+v", v, d)
			}
			return
		}
		checkDirectives(t, v, d)
		twice := append(append(append([]byte(nil), v...), ", "...), v...)
		d2, ok2 := ParseTargeted(twice)
		if !ok2 || d2.Flags != d.Flags || d2.MaxAge != d.MaxAge || d2.SMaxAge != d.SMaxAge ||
			d2.MaxStale != d.MaxStale || d2.MinFresh != d.MinFresh ||
			d2.StaleWhileRevalidate != d.StaleWhileRevalidate || d2.StaleIfError != d.StaleIfError ||
			string(d2.NoCacheFields) != string(d.NoCacheFields) || string(d2.PrivateFields) != string(d.PrivateFields) {
			t.Fatalf("%q repeated: %+v %v, alone %+v", v, d2, ok2, d)
		}
		if d3, ok3 := ParseTargeted(append([]byte("  "), v...)); !ok3 || d3.Flags != d.Flags {
			t.Fatalf("%q after spaces: %+v %v", v, d3, ok3)
		}
		if _, bad := ParseTargeted(append(append([]byte(nil), v...), ',')); bad {
			t.Fatalf("%q with a trailing comma is valid", v)
		}
	})
}
