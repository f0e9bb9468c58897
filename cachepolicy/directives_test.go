package cachepolicy

import (
	"testing"
)

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		in   string
		want Directives
	}{
		{"", Directives{}},
		{"   ,, ", Directives{}},
		{"no-store", Directives{Flags: NoStore}},
		{"NO-STORE", Directives{Flags: NoStore}},
		{"max-age=60", Directives{Flags: HasMaxAge, MaxAge: 60}},
		{"Max-Age=60", Directives{Flags: HasMaxAge, MaxAge: 60}},
		{`max-age="60"`, Directives{Flags: HasMaxAge, MaxAge: 60}},
		{"max-age = 60", Directives{Flags: HasMaxAge, MaxAge: 60}},
		{"max-age=0", Directives{Flags: HasMaxAge}},
		{"max-age", Directives{Flags: HasMaxAge}},
		{"max-age=", Directives{Flags: HasMaxAge}},
		{"max-age=-5", Directives{Flags: HasMaxAge}},
		{"max-age=+5", Directives{Flags: HasMaxAge}},
		{"max-age=1.5", Directives{Flags: HasMaxAge}},
		{"max-age=abc", Directives{Flags: HasMaxAge}},
		{"max-age=60 30", Directives{Flags: HasMaxAge}},
		{`max-age="60`, Directives{Flags: HasMaxAge}},
		{`max-age="60" x`, Directives{Flags: HasMaxAge}},
		{"max-age 60", Directives{Flags: HasMaxAge}},
		{"max-age=99999999999999999999999", Directives{Flags: HasMaxAge, MaxAge: MaxDelta}},
		{"max-age=2147483648", Directives{Flags: HasMaxAge, MaxAge: MaxDelta}},
		{"max-age=2147483647", Directives{Flags: HasMaxAge, MaxAge: 2147483647}},
		{"max-age=60, max-age=30", Directives{Flags: HasMaxAge, MaxAge: 30}},
		{"max-age=30, max-age=60", Directives{Flags: HasMaxAge, MaxAge: 30}},
		{"max-age=30, max-age=bad", Directives{Flags: HasMaxAge}},
		{"s-maxage=120, max-age=10", Directives{Flags: HasSMaxAge | HasMaxAge, SMaxAge: 120, MaxAge: 10}},
		{"s-maxage=x", Directives{Flags: HasSMaxAge}},
		{"public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300",
			Directives{Flags: Public | HasMaxAge | HasSMaxAge | HasStaleWhileRevalidate | HasStaleIfError,
				SMaxAge: 60, StaleWhileRevalidate: 30, StaleIfError: 300}},
		{"stale-while-revalidate=bad, stale-if-error=-1", Directives{}},
		{"stale-while-revalidate=10, stale-while-revalidate=5", Directives{Flags: HasStaleWhileRevalidate, StaleWhileRevalidate: 5}},
		{"max-stale", Directives{Flags: HasMaxStale, MaxStale: MaxDelta}},
		{"max-stale=10", Directives{Flags: HasMaxStale, MaxStale: 10}},
		{"max-stale=10, max-stale", Directives{Flags: HasMaxStale, MaxStale: 10}},
		{"max-stale=x", Directives{}},
		{"min-fresh=5, min-fresh=9", Directives{Flags: HasMinFresh, MinFresh: 9}},
		{"min-fresh", Directives{}},
		{"only-if-cached", Directives{Flags: OnlyIfCached}},
		{"no-cache", Directives{Flags: NoCache}},
		{`no-cache="set-cookie"`, Directives{NoCacheFields: []byte("set-cookie")}},
		{`no-cache="set-cookie, x-a"`, Directives{NoCacheFields: []byte("set-cookie, x-a")}},
		{`no-cache=set-cookie`, Directives{NoCacheFields: []byte("set-cookie")}},
		{`no-cache=""`, Directives{Flags: NoCache}},
		{`no-cache="a", no-cache="b"`, Directives{Flags: NoCache, NoCacheFields: []byte("a")}},
		{`no-cache="a;b"`, Directives{Flags: NoCache}},
		{`private`, Directives{Flags: Private}},
		{`private="x-user"`, Directives{PrivateFields: []byte("x-user")}},
		{`private="x-user", max-age=5`, Directives{Flags: HasMaxAge, MaxAge: 5, PrivateFields: []byte("x-user")}},
		{"must-revalidate, proxy-revalidate, must-understand, immutable, no-transform",
			Directives{Flags: MustRevalidate | ProxyRevalidate | MustUnderstand | Immutable | NoTransform}},
		{"public=1, immutable=yes", Directives{}},
		{"public foo", Directives{}},
		{"no-store foo", Directives{Flags: NoStore}},
		{`foo="a, max-age=5", max-age=7`, Directives{Flags: HasMaxAge, MaxAge: 7}},
		{`foo="a\", max-age=5", max-age=7`, Directives{Flags: HasMaxAge, MaxAge: 7}},
		{"=5, no-store", Directives{Flags: NoStore}},
		{"\tno-store\t,\tmax-age=1\t", Directives{Flags: NoStore | HasMaxAge, MaxAge: 1}},
		{"no-store;x, public", Directives{Flags: NoStore | Public}},
	}
	for _, tt := range tests {
		got := ParseCacheControl([]byte(tt.in))
		if !sameDirectives(got, tt.want) {
			t.Errorf("ParseCacheControl(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func sameDirectives(a, b Directives) bool {
	return a.Flags == b.Flags && a.MaxAge == b.MaxAge && a.SMaxAge == b.SMaxAge &&
		a.MaxStale == b.MaxStale && a.MinFresh == b.MinFresh &&
		a.StaleWhileRevalidate == b.StaleWhileRevalidate && a.StaleIfError == b.StaleIfError &&
		string(a.NoCacheFields) == string(b.NoCacheFields) && string(a.PrivateFields) == string(b.PrivateFields) &&
		(a.NoCacheFields == nil) == (b.NoCacheFields == nil) && (a.PrivateFields == nil) == (b.PrivateFields == nil)
}

func TestParseDeltaSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"007", 7, true},
		{"2147483648", MaxDelta, true},
		{"2147483649", MaxDelta, true},
		{"18446744073709551616", MaxDelta, true},
		{"", 0, false},
		{"-1", 0, false},
		{" 1", 0, false},
		{"1a", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseDeltaSeconds([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseDeltaSeconds(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseTargeted(t *testing.T) {
	tests := []struct {
		in   string
		want Directives
		ok   bool
	}{
		{"max-age=60", Directives{Flags: HasMaxAge, MaxAge: 60}, true},
		{"max-age=60, private", Directives{Flags: HasMaxAge | Private, MaxAge: 60}, true},
		{" no-store ", Directives{Flags: NoStore}, true},
		{"no-store=?0, max-age=5", Directives{Flags: HasMaxAge, MaxAge: 5}, true},
		{"no-store=?1", Directives{Flags: NoStore}, true},
		{`no-cache="set-cookie"`, Directives{NoCacheFields: []byte("set-cookie")}, true},
		{`private=("a" "b")`, Directives{Flags: Private}, true},
		{"max-age=60;foo=bar;baz", Directives{Flags: HasMaxAge, MaxAge: 60}, true},
		// RFC 9213 §2.1: seconds are an Integer; a String or Decimal is
		// not consumed as seconds (cache-tests cdn-cc-invalid-sh-type-wrong).
		{`max-age="60"`, Directives{Flags: HasMaxAge}, true},
		{`s-maxage="60", stale-while-revalidate="60"`, Directives{Flags: HasSMaxAge}, true},
		{"max-age=-1", Directives{Flags: HasMaxAge}, true},
		{"max-age=1.5", Directives{Flags: HasMaxAge}, true},
		{"unknown=:aGVsbG8=:, max-age=3", Directives{Flags: HasMaxAge, MaxAge: 3}, true},
		{"", Directives{}, false},
		{"   ", Directives{}, false},
		{"Max-Age=60", Directives{}, false}, // keys are lowercase in SF
		{"max-age=60,", Directives{}, false},
		{"max-age=60 private", Directives{}, false},
		{"max-age=1234567890123456", Directives{}, false},
		{`no-cache="unterminated`, Directives{}, false},
		{"max-age=?2", Directives{}, false},
		{"a=(1 2", Directives{}, false},
		{"a=:not base64!:", Directives{}, false},
		{"max-age=60;", Directives{}, false},
		// RFC 9213 §2.1: a value that is not a valid Dictionary is
		// ignored entirely; nothing before the error applies.
		{"no-store, max-age=60 x", Directives{}, false},
		{`no-store, "max-age"`, Directives{}, false},
		{"no-store, max-age=60,,", Directives{}, false},
		{"no-store,, max-age=60", Directives{}, false},
		{"no-store, 1max-age=60", Directives{}, false},
		{`no-store, x="\a"`, Directives{}, false},
		{"no-store, x=\"\xe9\"", Directives{}, false},
		{"no-store, x=1.", Directives{}, false},
		{"no-store, x=1.2345", Directives{}, false},
		{"no-store, x=-", Directives{}, false},
		{"no-store, x=(1 2)x", Directives{}, false},
		{"no-store;a=(1), max-age=5", Directives{}, false},
		{"\tno-store", Directives{}, false},
		{`x="a\"b\\c", max-age=5`, Directives{Flags: HasMaxAge, MaxAge: 5}, true},
		{"no-store\t,\tmax-age=5\t", Directives{Flags: NoStore | HasMaxAge, MaxAge: 5}, true},
		// RFC 8941 §4.2.2: a repeated key takes its last value.
		{"max-age=10, max-age=60", Directives{Flags: HasMaxAge, MaxAge: 60}, true},
		{"max-age=60, max-age=10", Directives{Flags: HasMaxAge, MaxAge: 10}, true},
		{"no-store, no-store=?0, max-age=5", Directives{Flags: HasMaxAge, MaxAge: 5}, true},
		{"no-store=?0, no-store", Directives{Flags: NoStore}, true},
		{`private="a", private`, Directives{Flags: Private}, true},
		{`private, private="a"`, Directives{PrivateFields: []byte("a")}, true},
		{`no-cache="a", no-cache="b"`, Directives{NoCacheFields: []byte("b")}, true},
	}
	for _, tt := range tests {
		got, ok := ParseTargeted([]byte(tt.in))
		if ok != tt.ok || !sameDirectives(got, tt.want) {
			t.Errorf("ParseTargeted(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestResponseDirectives(t *testing.T) {
	tests := []struct {
		name              string
		targeted, cdn, cc string
		wantFlags         Flags
		wantMaxAge        int64
	}{
		{"cache-control only", "", "", "max-age=10", HasMaxAge, 10},
		{"cdn overrides", "", "max-age=20", "no-store", HasMaxAge | Targeted, 20},
		{"own field overrides cdn", "max-age=30", "max-age=20", "max-age=10", HasMaxAge | Targeted, 30},
		{"invalid own field falls back to cdn", "max-age=30,", "max-age=20", "max-age=10", HasMaxAge | Targeted, 20},
		{"invalid cdn falls back to cache-control", "", "Max-Age=20", "max-age=10", HasMaxAge, 10},
		{"cdn no-store wins over cache-control", "", "no-store", "public, max-age=10", NoStore | Targeted, 0},
		// RFC 9213 §2.1: an invalid Dictionary is ignored as a whole,
		// not applied up to the error.
		{"cdn invalid after a valid member is ignored", "", "no-store, max-age=60 private", "public, max-age=10", Public | HasMaxAge, 10},
		{"cdn over two lines joined", "", "no-store, max-age=5", "max-age=10", NoStore | HasMaxAge | Targeted, 5},
		// Cache-Control over several lines, joined: s-maxage and max-age
		// both kept (NewMeta gives s-maxage the lifetime).
		{"cache-control over two lines", "", "", "max-age=600, s-maxage=5", HasMaxAge | HasSMaxAge, 600},
	}
	for _, tt := range tests {
		d := ResponseDirectives(bytesOrNil(tt.targeted), bytesOrNil(tt.cdn), bytesOrNil(tt.cc))
		if d.Flags != tt.wantFlags || d.MaxAge != tt.wantMaxAge {
			t.Errorf("%s: flags %b max-age %d; want %b %d", tt.name, d.Flags, d.MaxAge, tt.wantFlags, tt.wantMaxAge)
		}
	}
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
