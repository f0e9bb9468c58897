package origin

import (
	"bytes"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

func TestParseID(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "42": 42, "9223372036854775807": math.MaxInt64} {
		if got, err := parseID(in); err != nil || got != want {
			t.Errorf("parseID(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "00", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x1", "9223372036854775808", "١"} {
		if _, err := parseID(in); err == nil {
			t.Errorf("parseID(%q) accepted", in)
		}
	}
}

func TestParseListQuery(t *testing.T) {
	for _, tc := range []struct {
		query  string
		limit  int
		before int64
		code   string
	}{
		{"", 20, 0, ""},
		{"limit=1", 1, 0, ""},
		{"limit=100&before=7", 100, 7, ""},
		{"other=1", 20, 0, ""},
		{"limit=101", 0, 0, "invalid_limit"},
		{"limit=", 0, 0, "invalid_limit"},
		{"before=", 0, 0, "invalid_before"},
		{"before=1&before=2", 0, 0, "invalid_before"},
		{"limit=%", 0, 0, "invalid_query"},
	} {
		limit, before, e := parseListQuery(tc.query)
		code := ""
		if e != nil {
			code = e.code
		}
		if code != tc.code || limit != tc.limit || before != tc.before {
			t.Errorf("%q: %d, %d, %q; want %d, %d, %q", tc.query, limit, before, code, tc.limit, tc.before, tc.code)
		}
	}
}

func TestIfMatchPreconditions(t *testing.T) {
	for _, tc := range []struct {
		header  string
		version int64
		allows  bool
	}{
		{"", 3, true},
		{`"3"`, 3, true},
		{`"2", "3"`, 3, true},
		{`*`, 3, true},
		{`"2"`, 3, false},
		{`W/"3"`, 3, false}, // If-Match compares strongly
		{`3`, 3, false},
	} {
		var h fasthttp.RequestHeader
		if tc.header != "" {
			h.Set("If-Match", tc.header)
		}
		if got := parseIfMatch(&h).allows(tc.version); got != tc.allows {
			t.Errorf("If-Match %q at version %d: allows %v", tc.header, tc.version, got)
		}
	}
}

// FuzzParseID: never panics; anything accepted is positive and prints back
// as the same string (one URL per row).
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1", "0", "007", "-1", "9223372036854775807", "9223372036854775808", "1e3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseID(s)
		if err != nil {
			return
		}
		if id <= 0 || strconv.FormatInt(id, 10) != s {
			t.Fatalf("parseID(%q) = %d", s, id)
		}
	})
}

// FuzzParseListQuery: never panics; accepted limits are in range.
func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"", "limit=5", "limit=101", "before=3&limit=1", "limit=%zz", "limit=1&limit=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		limit, before, e := parseListQuery(q)
		if e != nil {
			if e.status != http.StatusBadRequest || e.code == "" {
				t.Fatalf("%q: error %+v", q, e)
			}
			return
		}
		if limit < 1 || limit > maxLimit || before < 0 {
			t.Fatalf("%q: limit %d, before %d", q, limit, before)
		}
	})
}

// A \u escape of a lone surrogate is refused, not stored as U+FFFD; a pair
// and escaped backslashes are not mistaken for one.
func TestLoneSurrogateRefused(t *testing.T) {
	for body, lone := range map[string]bool{
		`{"body":"\ud800"}`:               true,
		`{"body":"\uDFFF"}`:               true,
		`{"body":"a\ud83dx"}`:             true,
		`{"body":"\ud83d\u0041"}`:         true,
		`{"body":"\ude00\ud83d"}`:         true,
		`{"body":"\ud83d\ude00"}`:         false, // 😀
		`{"body":"\\ud800"}`:              false, // a backslash, then "ud800"
		`{"body":"\"\ud800"}`:             true,
		`{"body":"x","\ud800":1}`:         true,
		`{"body":"\u00e9\u20ac"}`:         false,
		"{\"body\":\"\xf0\x9f\x98\x80\"}": false,
	} {
		got, e := decodePost([]byte(body))
		switch {
		case lone && (e == nil || e.code != "invalid_utf8" || e.status != http.StatusBadRequest):
			t.Errorf("%s: got %q, %+v; want 400 invalid_utf8", body, got, e)
		case !lone && e != nil && e.code == "invalid_utf8":
			t.Errorf("%s: refused as a lone surrogate", body)
		case !lone && e == nil && strings.ContainsRune(got, utf8.RuneError):
			t.Errorf("%s: stored U+FFFD", body)
		}
	}
	if _, _, e := decodeUser([]byte(`{"name":"\udc00","email":"a@example.com"}`)); e == nil || e.code != "invalid_utf8" {
		t.Errorf("user name with a lone surrogate: %+v, want invalid_utf8", e)
	}
}

// FuzzDecodePost: never panics; an accepted body is 1..1024 bytes of valid
// UTF-8; a refusal is a 400 or 413 with a code.
func FuzzDecodePost(f *testing.F) {
	for _, s := range []string{`{"body":"x"}`, `{"body":""}`, `{"body":1}`, `{"body":"x"} x`, `{"bdy":"x"}`, "{\"body\":\"\xff\"}",
		`{"body":"\ud800"}`, `null`, `[]`, `{"body":"` + strings.Repeat("a", 1025) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, e := decodePost(data)
		if e != nil {
			if (e.status != http.StatusBadRequest && e.status != http.StatusRequestEntityTooLarge) || e.code == "" {
				t.Fatalf("%q: error %+v", data, e)
			}
			return
		}
		if body == "" || len(body) > maxPostBytes || !utf8.ValidString(body) {
			t.Fatalf("%q: accepted body %q", data, body)
		}
		// U+FFFD only if it was sent: never a replaced lone surrogate.
		if strings.ContainsRune(body, utf8.RuneError) && !bytes.Contains(data, []byte("\xef\xbf\xbd")) &&
			!bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`)) {
			t.Fatalf("%q: accepted body %q with a U+FFFD that was not sent", data, body)
		}
	})
}

// FuzzDecodeUser: never panics; accepted names and emails are within their
// limits.
func FuzzDecodeUser(f *testing.F) {
	for _, s := range []string{`{"name":"a","email":"a@example.com"}`, `{"name":"a"}`, `{"name":"a","email":"a"}`,
		`{"name":"a","email":"a@example.com","x":1}`, `{"name":"\u0000","email":"a@example.com"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		name, email, e := decodeUser(data)
		if e != nil {
			if e.status != http.StatusBadRequest || e.code == "" {
				t.Fatalf("%q: error %+v", data, e)
			}
			return
		}
		if n := utf8.RuneCountInString(name); n == 0 || n > maxNameRunes || !utf8.ValidString(name) ||
			len(email) > maxEmailBytes || !strings.Contains(email, "@") {
			t.Fatalf("%q: accepted %q, %q", data, name, email)
		}
	})
}
