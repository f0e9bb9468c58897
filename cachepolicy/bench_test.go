package cachepolicy

import (
	"testing"
	"time"
)

// Inputs are made once, as the proxy's header values already exist: a
// []byte("...") conversion in the loop would be the test's own allocation.
var (
	contractCC = []byte("public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300")
	cdnCC      = []byte("max-age=60, stale-if-error=10")
	varyIn     = []byte("Accept-Language, Accept-Encoding")
	acceptEnc  = []byte("gzip, br")
	benchNow   = t0.Add(10 * time.Second)
	ageIn      = []byte("0, old")
	rangeIn    = []byte("bytes=500-599, 0-99, -10")
	ifRangeIn  = []byte(`"7"`)
	etagIn     = []byte(`"7"`)
	ranges     [MaxRanges]ByteRange
)

func benchMeta() Meta {
	resp := Response{
		Status:       200,
		CacheControl: ParseCacheControl(contractCC),
		Date:         []byte(httpDate(t0)),
		ETag:         []byte(`"7"`),
		LastModified: []byte(httpDate(t0.Add(-time.Hour))),
		Vary:         []byte("Accept-Encoding"),
	}
	return NewMeta(&resp, t0, t0)
}

// hotPath is what the proxy does for an L1 hit: request facts, key, vary
// key, memcached key, decision, Cache-Status.
func hotPath(m *Meta, buf, mk, cs []byte) ([]byte, []byte, []byte, Decision) {
	req := NewRequest([]byte("GET"), nil, nil, false)
	k := AppendKey(buf[:0], []byte("http"), []byte("example.com"), []byte("/v1/posts/7"), []byte("b=2&a=1"))
	k = AppendVaryKey(k, m.Vary, func([]byte) []byte { return acceptEnc })
	mk = AppendMemcacheKey(mk[:0], "ec:", k)
	d := Decide(&req, m, benchNow)
	s := CacheStatus{Cache: "edgecache", Hit: true, TTL: d.TTL, HasTTL: true}
	return k, mk, s.Append(cs[:0]), d
}

// TestHotPathAllocations: the hit path and the parsers it uses do not
// allocate (a behaviour of the code, not a timing).
func TestHotPathAllocations(t *testing.T) {
	m := benchMeta()
	enc, _ := m.MarshalBinary()
	buf, mk, cs := make([]byte, 0, 256), make([]byte, 0, 64), make([]byte, 0, 128)
	rules := NewFieldRules("Edgecache-Groups")
	checks := map[string]func(){
		"hot path":           func() { hotPath(&m, buf, mk, cs) },
		"ParseCacheControl":  func() { ParseCacheControl(contractCC) },
		"ResponseDirectives": func() { ResponseDirectives(nil, cdnCC, contractCC) },
		"ReadMeta":           func() { ReadMeta(enc) },
		"AppendBinary":       func() { m.AppendBinary(buf[:0]) },
		"NotModified":        func() { m.NotModified([]byte(`"6", "7"`), nil) },
		"ParseHTTPDate":      func() { ParseHTTPDate([]byte("Sun, 06 Nov 1994 08:49:37 GMT")) },
		"Forward":            func() { rules.Forward([]byte("Content-Type"), []byte("keep-alive")) },
		"Storable":           func() { storableBench(&m) },
		"AppendVary":         func() { AppendVary(buf[:0], varyIn) },
		"ParseTargeted":      func() { ParseTargeted(cdnCC) },
		"ParseAge":           func() { ParseAge(ageIn) },
		"ParseRange":         func() { ParseRange(rangeIn, 1000, ranges[:0]) },
		"IfRange":            func() { m.IfRange(ifRangeIn) },
		"AppendContentRange": func() { AppendContentRange(buf[:0], ByteRange{0, 499}, 1000) },
		"SelectsHead":        func() { m.SelectsHead(etagIn, nil, nil, 5) },
	}
	for name, fn := range checks {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

func storableBench(m *Meta) bool {
	req := NewRequest([]byte("GET"), nil, nil, false)
	resp := Response{Status: 200, CacheControl: ParseCacheControl(contractCC), Vary: m.Vary}
	ok, _ := Storable(&req, &resp)
	return ok
}

func BenchmarkHitPath(b *testing.B) {
	m := benchMeta()
	buf, mk, cs := make([]byte, 0, 256), make([]byte, 0, 64), make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		hotPath(&m, buf, mk, cs)
	}
}

func BenchmarkParseCacheControl(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ParseCacheControl(contractCC)
	}
}

func BenchmarkNewRequestNoCacheControl(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewRequest([]byte("GET"), nil, nil, false)
	}
}

func BenchmarkDecide(b *testing.B) {
	m := benchMeta()
	req := NewRequest([]byte("GET"), nil, nil, false)
	b.ReportAllocs()
	for b.Loop() {
		Decide(&req, &m, benchNow)
	}
}

func BenchmarkAppendKey(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		AppendKey(buf[:0], []byte("http"), []byte("example.com"), []byte("/v1/users/42/posts"), []byte("limit=20&before=901"))
	}
}

func BenchmarkAppendMemcacheKey(b *testing.B) {
	buf := make([]byte, 0, 64)
	k := []byte("http://example.com/v1/posts/7")
	b.ReportAllocs()
	for b.Loop() {
		AppendMemcacheKey(buf[:0], "ec:", k)
	}
}

func BenchmarkReadMeta(b *testing.B) {
	m := benchMeta()
	enc, _ := m.MarshalBinary()
	b.ReportAllocs()
	for b.Loop() {
		ReadMeta(enc)
	}
}

func BenchmarkAppendBinary(b *testing.B) {
	m := benchMeta()
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		m.AppendBinary(buf[:0])
	}
}

func BenchmarkParseRange(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ParseRange(rangeIn, 1000, ranges[:0])
	}
}

func BenchmarkCacheStatusAppend(b *testing.B) {
	s := CacheStatus{Cache: "edgecache", Fwd: FwdMiss, FwdStatus: 200, Stored: true, TTL: 60, HasTTL: true}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		s.Append(buf[:0])
	}
}

func BenchmarkNewMeta(b *testing.B) {
	resp := Response{
		Status:       200,
		CacheControl: ParseCacheControl(contractCC),
		Date:         []byte(httpDate(t0)),
		ETag:         []byte(`"7"`),
		LastModified: []byte(httpDate(t0.Add(-time.Hour))),
	}
	b.ReportAllocs()
	for b.Loop() {
		NewMeta(&resp, t0, t0)
	}
}

func BenchmarkFieldRulesStore(b *testing.B) {
	rules := NewFieldRules("Edgecache-Groups", "Edgecache-Fresh")
	names := [][]byte{[]byte("Content-Type"), []byte("ETag"), []byte("Last-Modified"), []byte("Cache-Control"), []byte("Date")}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			rules.Store(n, nil, nil)
		}
	}
}
