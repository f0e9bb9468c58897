package cachepolicy

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// t0 is the time the test responses are received.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func httpDate(t time.Time) string { return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") }

func TestNewMetaLifetime(t *testing.T) {
	tests := []struct {
		name                   string
		status                 int
		cc, cdn                string
		date, expires, lastMod string
		lifetime               int64
		heuristic              bool
	}{
		{name: "s-maxage beats max-age", status: 200, cc: "max-age=10, s-maxage=100", lifetime: 100},
		// RFC 9111 §5.2.2.10: s-maxage wins for a shared cache even when
		// shorter, also when it came on another field line (joined).
		{name: "shorter s-maxage on another line wins", status: 200, cc: "max-age=600, s-maxage=5", lifetime: 5},
		{name: "expires with wrong case", status: 200, date: httpDate(t0), expires: "sun, 27 NOV 2026 13:00:00 gmt", lifetime: 3600},
		{name: "500 with max-age", status: 500, cc: "max-age=30", lifetime: 30},
		{name: "public allows heuristic for 500", status: 500, cc: "public", date: httpDate(t0), lastMod: httpDate(t0.Add(-1000 * time.Second)), lifetime: 100, heuristic: true},
		{name: "no heuristic for 503", status: 503, date: httpDate(t0), lastMod: httpDate(t0.Add(-1000 * time.Second)), lifetime: 0},
		{name: "max-age beats expires", status: 200, cc: "max-age=10", date: httpDate(t0), expires: httpDate(t0.Add(time.Hour)), lifetime: 10},
		{name: "expires minus date", status: 200, date: httpDate(t0.Add(-time.Minute)), expires: httpDate(t0.Add(time.Hour)), lifetime: 3660},
		{name: "expires without date uses response time", status: 200, expires: httpDate(t0.Add(time.Hour)), lifetime: 3600},
		{name: "expires in the past", status: 200, date: httpDate(t0), expires: httpDate(t0.Add(-time.Hour)), lifetime: 0},
		{name: "invalid expires is expired", status: 200, date: httpDate(t0), expires: "0", lastMod: httpDate(t0.Add(-100 * time.Hour)), lifetime: 0},
		{name: "expires ignored under a targeted field", status: 200, cdn: "public", date: httpDate(t0), expires: httpDate(t0.Add(time.Hour)), lastMod: httpDate(t0.Add(-100 * time.Second)), lifetime: 10, heuristic: true},
		{name: "heuristic 10 percent", status: 200, date: httpDate(t0), lastMod: httpDate(t0.Add(-1000 * time.Second)), lifetime: 100, heuristic: true},
		{name: "heuristic capped at a day", status: 200, date: httpDate(t0), lastMod: httpDate(t0.Add(-100 * 24 * time.Hour)), lifetime: HeuristicMax, heuristic: true},
		{name: "heuristic for 404", status: 404, date: httpDate(t0), lastMod: httpDate(t0.Add(-1000 * time.Second)), lifetime: 100, heuristic: true},
		{name: "no heuristic for 302", status: 302, date: httpDate(t0), lastMod: httpDate(t0.Add(-1000 * time.Second)), lifetime: 0},
		{name: "public allows heuristic for 302", status: 302, cc: "public", date: httpDate(t0), lastMod: httpDate(t0.Add(-1000 * time.Second)), lifetime: 100, heuristic: true},
		{name: "last-modified after date", status: 200, date: httpDate(t0), lastMod: httpDate(t0.Add(time.Hour)), lifetime: 0},
		{name: "invalid last-modified", status: 200, date: httpDate(t0), lastMod: "yesterday", lifetime: 0},
		{name: "nothing", status: 200, lifetime: 0},
		{name: "saturated max-age", status: 200, cc: "max-age=9999999999999", lifetime: MaxDelta},
		{name: "far expires saturates", status: 200, date: "Thu, 01 Jan 1970 00:00:00 GMT", expires: "Fri, 31 Dec 9999 23:59:59 GMT", lifetime: MaxDelta},
	}
	for _, tt := range tests {
		resp := Response{
			Status:       tt.status,
			CacheControl: ResponseDirectives(nil, bytesOrNil(tt.cdn), bytesOrNil(tt.cc)),
			Date:         bytesOrNil(tt.date),
			Expires:      bytesOrNil(tt.expires),
			LastModified: bytesOrNil(tt.lastMod),
		}
		m := NewMeta(&resp, t0, t0)
		if m.Lifetime != tt.lifetime || m.Heuristic != tt.heuristic {
			t.Errorf("%s: lifetime %d heuristic %v; want %d %v", tt.name, m.Lifetime, m.Heuristic, tt.lifetime, tt.heuristic)
		}
	}
}

func TestNewMetaFlags(t *testing.T) {
	tests := []struct {
		cc                 string
		noCache, mustReval bool
		swr, sie           int64
	}{
		{"max-age=60, stale-while-revalidate=30, stale-if-error=300", false, false, 30, 300},
		{"public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300", false, true, 30, 300},
		{"max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=300", false, true, 0, 0},
		{"max-age=60, proxy-revalidate, stale-if-error=300", false, true, 0, 0},
		{"no-cache, stale-if-error=300", true, false, 0, 300},
		{`no-cache="x-a", max-age=5`, false, false, 0, 0},
	}
	for _, tt := range tests {
		resp := Response{Status: 200, CacheControl: ParseCacheControl([]byte(tt.cc))}
		m := NewMeta(&resp, t0, t0)
		if m.NoCache != tt.noCache || m.MustRevalidate != tt.mustReval || m.StaleWhileRevalidate != tt.swr || m.StaleIfError != tt.sie {
			t.Errorf("%q: no-cache %v must-revalidate %v swr %d sie %d; want %v %v %d %d", tt.cc,
				m.NoCache, m.MustRevalidate, m.StaleWhileRevalidate, m.StaleIfError, tt.noCache, tt.mustReval, tt.swr, tt.sie)
		}
	}
}

func TestNewMetaFields(t *testing.T) {
	resp := Response{
		Status:       200,
		CacheControl: ParseCacheControl([]byte("max-age=60, immutable")),
		Date:         []byte("not a date"),
		Age:          []byte("bogus"),
		ETag:         []byte(`"v1"`),
		LastModified: []byte(httpDate(t0.Add(-time.Hour))),
		Vary:         []byte("Accept-Language, accept-encoding,ACCEPT-ENCODING, ,bad name"),
	}
	m := NewMeta(&resp, t0.Add(-2*time.Second), t0)
	if m.Date != t0.Unix() {
		t.Errorf("invalid Date: got %d, want the response time %d", m.Date, t0.Unix())
	}
	if m.AgeValue != 0 || m.RequestTime != t0.Unix()-2 || m.ResponseTime != t0.Unix() {
		t.Errorf("age %d request %d response %d", m.AgeValue, m.RequestTime, m.ResponseTime)
	}
	if string(m.Vary) != "accept-encoding,accept-language" {
		t.Errorf("Vary = %q", m.Vary)
	}
	if !m.Immutable || string(m.ETag) != `"v1"` || m.Status != 200 {
		t.Errorf("meta %+v", m)
	}
}

func TestMetaBinaryRoundTrip(t *testing.T) {
	metas := []Meta{
		{Status: 100},
		{Status: 200, RequestTime: 1, ResponseTime: 2, Date: -3, AgeValue: 4, Lifetime: MaxDelta,
			StaleWhileRevalidate: 30, StaleIfError: 300, NoCache: true, MustRevalidate: true,
			Heuristic: true, Immutable: true, ETag: []byte(`W/"x"`),
			LastModified: []byte("Sun, 06 Nov 1994 08:49:37 GMT"), Vary: []byte("accept,accept-encoding")},
		{Status: 404, RequestTime: t0.Unix(), ResponseTime: t0.Unix(), Date: t0.Unix(), Lifetime: 60},
	}
	for _, m := range metas {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Meta
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary(%x): %v", b, err)
		}
		if !sameMeta(got, m) {
			t.Errorf("round trip: got %+v, want %+v", got, m)
		}
		// ReadMeta reads a prefix and reports its length.
		withBody := append(b, "body"...)
		got2, n, err := ReadMeta(withBody)
		if err != nil || n != len(b) || !sameMeta(got2, m) {
			t.Errorf("ReadMeta: n=%d (want %d) err=%v meta %+v", n, len(b), err, got2)
		}
		if err := got.UnmarshalBinary(withBody); !errors.Is(err, ErrCorruptMeta) {
			t.Errorf("UnmarshalBinary with trailing bytes: %v", err)
		}
		// UnmarshalBinary copies: changing the input does not change it.
		for i := range b {
			b[i] = 0xff
		}
		if !sameMeta(got, m) {
			t.Errorf("UnmarshalBinary aliased its input")
		}
	}
}

func sameMeta(a, b Meta) bool {
	return a.Status == b.Status && a.RequestTime == b.RequestTime && a.ResponseTime == b.ResponseTime &&
		a.Date == b.Date && a.AgeValue == b.AgeValue && a.Lifetime == b.Lifetime &&
		a.StaleWhileRevalidate == b.StaleWhileRevalidate && a.StaleIfError == b.StaleIfError &&
		a.NoCache == b.NoCache && a.MustRevalidate == b.MustRevalidate && a.Heuristic == b.Heuristic &&
		a.Immutable == b.Immutable && bytes.Equal(a.ETag, b.ETag) &&
		bytes.Equal(a.LastModified, b.LastModified) && bytes.Equal(a.Vary, b.Vary)
}

func TestReadMetaRejectsCorrupt(t *testing.T) {
	good, _ := (&Meta{Status: 200, Lifetime: 5, ETag: []byte(`"a"`), Vary: []byte("accept")}).MarshalBinary()
	corrupt := map[string][]byte{
		"empty":                nil,
		"one byte":             {1},
		"wrong version":        append([]byte{2}, good[1:]...),
		"unknown flag":         append([]byte{1, 0x80}, good[2:]...),
		"status 0":             {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"status 1000":          {1, 0, 0xe8, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"lifetime over":        append(append([]byte{1, 0, 200, 1, 0, 0, 0, 0}, 0x81, 0x80, 0x80, 0x80, 0x08), 0, 0, 0, 0, 0),
		"field too long":       {1, 0, 200, 1, 0, 0, 0, 0, 0, 0, 0, 5, 'a'},
		"control char in etag": {1, 0, 200, 1, 0, 0, 0, 0, 0, 0, 0, 3, '"', '\n', '"', 0, 0},
		"vary not canonical":   {1, 0, 200, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 'b', ',', 'a'},
		"vary uppercase":       {1, 0, 200, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'A'},
		"vary trailing comma":  {1, 0, 200, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'a', ','},
		"time too large":       {1, 0, 200, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for i := range good {
		corrupt["truncated "+string(rune('a'+i))] = good[:i]
	}
	for name, b := range corrupt {
		if _, _, err := ReadMeta(b); !errors.Is(err, ErrCorruptMeta) {
			t.Errorf("%s: ReadMeta(%x) err = %v, want ErrCorruptMeta", name, b, err)
		}
	}
	if _, _, err := ReadMeta(good); err != nil {
		t.Errorf("good: %v", err)
	}
}

func TestAppendBinaryLimits(t *testing.T) {
	for _, m := range []Meta{{Status: 200, ETag: make([]byte, maxMetaField+1)}, {Status: 0}, {Status: 1000}} {
		if _, err := m.AppendBinary(nil); err == nil {
			t.Errorf("AppendBinary accepted status %d, ETag of %d bytes", m.Status, len(m.ETag))
		}
	}
	// Out-of-range numbers are clamped, so what is written can be read.
	m := Meta{Status: 200, RequestTime: -1 << 62, ResponseTime: 1 << 62, AgeValue: -5, Lifetime: 1 << 40}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadMeta(b)
	if err != nil || got.RequestTime != -timeLimit || got.ResponseTime != timeLimit || got.AgeValue != 0 || got.Lifetime != MaxDelta {
		t.Errorf("clamped meta: %+v, %v", got, err)
	}
}
