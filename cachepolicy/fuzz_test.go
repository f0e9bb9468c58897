package cachepolicy

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300",
		`no-cache="set-cookie, x-a", private="x", max-stale, min-fresh=5`,
		`max-age="60", foo="a\"b, c", =,,`, "max-age=99999999999999999999", "no-store=?0, max-age=5;a=1",
		`private=("a" "b"), x=:aGk=:, y=1.5`, "must-understand, no-store, only-if-cached",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		d := ParseCacheControl(v)
		checkDirectives(t, v, d)
		// Directive names are case-insensitive: upper-casing the input
		// changes no flag and no number.
		u := ParseCacheControl(asciiUpper(string(v)))
		if u.Flags != d.Flags || u.MaxAge != d.MaxAge || u.SMaxAge != d.SMaxAge || u.MaxStale != d.MaxStale ||
			u.MinFresh != d.MinFresh || u.StaleWhileRevalidate != d.StaleWhileRevalidate || u.StaleIfError != d.StaleIfError {
			t.Errorf("case changes the result: %+v vs %+v", d, u)
		}
		if td, ok := ParseTargeted(v); ok {
			checkDirectives(t, v, td)
		}
		r := ResponseDirectives(v, v, v)
		checkDirectives(t, v, r)
	})
}

func checkDirectives(t *testing.T, v []byte, d Directives) {
	t.Helper()
	for _, x := range []struct {
		f Flags
		n int64
	}{{HasMaxAge, d.MaxAge}, {HasSMaxAge, d.SMaxAge}, {HasMaxStale, d.MaxStale}, {HasMinFresh, d.MinFresh},
		{HasStaleWhileRevalidate, d.StaleWhileRevalidate}, {HasStaleIfError, d.StaleIfError}} {
		if x.n < 0 || x.n > MaxDelta || (!d.Has(x.f) && x.n != 0) {
			t.Errorf("%q: value %d with flag %v", v, x.n, d.Has(x.f))
		}
	}
	for _, fields := range [][]byte{d.NoCacheFields, d.PrivateFields} {
		if fields != nil && (len(fields) == 0 || !validFieldList(fields) || !bytes.Contains(v, fields)) {
			t.Errorf("%q: field list %q", v, fields)
		}
	}
}

func FuzzVary(f *testing.F) {
	for _, s := range []string{"Accept-Encoding", "accept-language, Accept-Encoding, a, A", "*", " , x ,", "a\x00b, c"} {
		f.Add([]byte(s), []byte("gzip, br"))
	}
	f.Fuzz(func(t *testing.T, vary, value []byte) {
		canon, star := AppendVary(nil, vary)
		if star && len(canon) != 0 {
			t.Fatalf("%q: star with names %q", vary, canon)
		}
		if !canonicalVary(canon) {
			t.Fatalf("%q: AppendVary gave non-canonical %q", vary, canon)
		}
		again, star2 := AppendVary(nil, canon)
		if !bytes.Equal(again, canon) || star2 {
			t.Fatalf("not idempotent: %q -> %q", canon, again)
		}
		if ListHas(vary, "*") != star {
			t.Fatalf("%q: star %v, ListHas %v", vary, star, !star)
		}
		get := func([]byte) []byte { return value }
		k1 := AppendVaryKey(nil, canon, get)
		k2 := AppendVaryKey(nil, canon, func([]byte) []byte { return append(append([]byte(" "), value...), ' ') })
		if !bytes.Equal(k1, k2) {
			t.Fatalf("surrounding whitespace changes the key: %q vs %q", k1, k2)
		}
	})
}

func FuzzDeltaSeconds(f *testing.F) {
	for _, s := range []string{"0", "60", "2147483648", "99999999999999999999999", "-1", " 5", "5, 7", "x, 3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		n, ok := ParseDeltaSeconds(v)
		allDigits := len(v) > 0
		for _, c := range v {
			allDigits = allDigits && isDigit(c)
		}
		if ok != allDigits || n < 0 || n > MaxDelta {
			t.Fatalf("ParseDeltaSeconds(%q) = %d, %v", v, n, ok)
		}
		if ok {
			want, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil || want > MaxDelta {
				want = MaxDelta
			}
			if n != int64(want) {
				t.Fatalf("ParseDeltaSeconds(%q) = %d, want %d", v, n, want)
			}
		}
		age, ok := ParseAge(v)
		if age < 0 || age > MaxDelta || (!ok && age != 0) {
			t.Fatalf("ParseAge(%q) = %d, %v", v, age, ok)
		}
	})
}

func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994", "Sat, 29 Feb 2020 23:59:60 GMT", "0", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		sec, ok := ParseHTTPDate(v)
		if !ok {
			if sec != 0 {
				t.Fatalf("%q: invalid but %d", v, sec)
			}
			return
		}
		// Every accepted date prints as an IMF-fixdate that parses back to
		// the same instant.
		tm := time.Unix(sec, 0).UTC()
		if tm.Year() < 0 || tm.Year() > 9999 {
			t.Fatalf("%q: year %d", v, tm.Year())
		}
		s := tm.Format("Mon, 02 Jan 2006 15:04:05 GMT")
		if back, ok := ParseHTTPDate([]byte(s)); !ok || back != sec {
			t.Fatalf("%q -> %d -> %q -> %d, %v", v, sec, s, back, ok)
		}
	})
}

func FuzzAppendKey(f *testing.F) {
	f.Add("http", "Example.com:80", "/a/%7e/b c", "b=2&a=1&&c=%2f")
	f.Add("https", "[::1]:443", "", "")
	f.Add("http", "h/x?y", "/%zz%", "a=%26&a=1")
	f.Fuzz(func(t *testing.T, scheme, host, path, query string) {
		if bytes.ContainsAny([]byte(scheme), ":/?%") || len(scheme) == 0 {
			return // the proxy's scheme is "http" or "https"
		}
		k := AppendKey(nil, []byte(scheme), []byte(host), []byte(path), []byte(query))
		for _, c := range k {
			if c <= ' ' || c >= 0x7f {
				t.Fatalf("key %q has byte %#x", k, c)
			}
		}
		// The key is a fixed point: its own parts give it back.
		rest := k[bytes.Index(k, []byte("://"))+3:]
		slash := bytes.IndexByte(rest, '/')
		h, pq := rest[:slash], rest[slash:]
		p, q := pq, []byte(nil)
		if i := bytes.IndexByte(pq, '?'); i >= 0 {
			p, q = pq[:i], pq[i+1:]
		}
		// (A host with an encoded byte is not re-read: '%' gets encoded again.)
		if again := AppendKey(nil, []byte(scheme), []byte(host), p, q); !bytes.Equal(again, k) {
			t.Fatalf("not a fixed point: %q -> %q", k, again)
		}
		if bytes.IndexByte(h, '%') < 0 {
			if again := AppendKey(nil, []byte(scheme), h, p, q); !bytes.Equal(again, k) {
				t.Fatalf("host not a fixed point: %q -> %q", k, again)
			}
		}
		// Equivalent spellings give the same key: case of scheme and host,
		// and percent-encoded unreserved characters in the path.
		var enc []byte
		for i := 0; i < len(path); i++ {
			if path[i] == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]) {
				enc = append(enc, path[i:i+3]...) // already an escape
				i += 2
			} else if unreserved(path[i]) {
				enc = append(enc, '%', "0123456789abcdef"[path[i]>>4], "0123456789abcdef"[path[i]&15])
			} else {
				enc = append(enc, path[i])
			}
		}
		if len(path) > 0 && path[0] != '/' {
			enc = append([]byte("/"), enc...)
			path = "/" + path
		}
		k1 := AppendKey(nil, []byte(scheme), []byte(host), []byte(path), []byte(query))
		k2 := AppendKey(nil, asciiUpper(scheme), asciiUpper(host), enc, []byte(query))
		if !bytes.Equal(k1, k2) {
			t.Fatalf("equivalent requests, different keys:\n%q\n%q", k1, k2)
		}
		mk := AppendMemcacheKey(nil, "ec:", k)
		if !validMemcacheKey(mk) || len(mk) != 3+MemcacheKeyLen {
			t.Fatalf("memcached key %q", mk)
		}
		if loc, ok := AppendLocationKey(nil, []byte(scheme), []byte(host), []byte(path), []byte(query)); ok {
			for _, c := range loc {
				if c <= ' ' || c >= 0x7f {
					t.Fatalf("location key %q has byte %#x", loc, c)
				}
			}
		}
	})
}

func FuzzReadMeta(f *testing.F) {
	for _, m := range []Meta{
		{Status: 200, Lifetime: 60, ETag: []byte(`"v1"`), Vary: []byte("accept-encoding")},
		{Status: 404, RequestTime: -5, ResponseTime: 1 << 39, Date: 3, AgeValue: MaxDelta, NoCache: true,
			MustRevalidate: true, StaleIfError: 300, LastModified: []byte("Sun, 06 Nov 1994 08:49:37 GMT")},
	} {
		b, _ := m.MarshalBinary()
		f.Add(b, int64(0), []byte("max-age=0"))
	}
	f.Fuzz(func(t *testing.T, b []byte, now int64, reqCC []byte) {
		m, n, err := ReadMeta(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		enc, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, n2, err := ReadMeta(enc)
		if err != nil || n2 != len(enc) || !sameMeta(m, m2) {
			t.Fatalf("re-decode: %v %d/%d %+v vs %+v", err, n2, len(enc), m, m2)
		}
		var u Meta
		if err := u.UnmarshalBinary(b[:n]); err != nil || !sameMeta(u, m) {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		req := NewRequest([]byte("GET"), reqCC, nil, false)
		d := Decide(&req, &m, time.Unix(now, 0))
		if d.Age < 0 || d.Age > MaxDelta || d.Action > GatewayTimeout {
			t.Fatalf("Decide: %+v", d)
		}
		m.NotModified(reqCC, reqCC)
		m.Selects304(reqCC, reqCC)
	})
}

func FuzzNotModified(f *testing.F) {
	f.Add([]byte(`"a"`), []byte(`W/"x", "a"`), []byte("Sun, 06 Nov 1994 08:49:37 GMT"))
	f.Add([]byte(`W/"a,b"`), []byte(`*`), []byte(""))
	f.Fuzz(func(t *testing.T, etag, inm, ims []byte) {
		m := Meta{Status: 200, ETag: etag, LastModified: ims}
		m.NotModified(inm, ims)
		m.Selects304(etag, ims)
		m.SelectsHead(etag, ims, inm, 5)
		// A well-formed entity-tag matches itself, alone or after another
		// member of a list, and a 304 carrying it selects the entry.
		o := opaque(etag)
		if o == nil || bytes.IndexByte(o[1:len(o)-1], '"') >= 0 {
			return
		}
		if !m.NotModified(etag, nil) || !m.NotModified(append([]byte(`"other", `), etag...), nil) {
			t.Fatalf("ETag %q does not match itself", etag)
		}
		if !m.Selects304(etag, nil) {
			t.Fatalf("a 304 with ETag %q does not select its entry", etag)
		}
	})
}

// asciiUpper upper-cases ASCII letters only (bytes.ToUpper rewrites invalid
// UTF-8).
func asciiUpper(s string) []byte {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return b
}
