package origin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// jsonStrings are texts whose encoding has a special case: every ASCII
// control byte, the quote and backslash, HTML's <>&, DEL, U+2028 and
// U+2029, invalid UTF-8, multi-byte characters.
var jsonStrings = []string{
	"", "plain text", `"quoted" \back\slash`, "<b>&amp;</b>", "\x7f", "tab\tnew\nline\rcr\bbs\fff",
	"\u2028\u2029", "a\u2028b\u2029c", "\xff", "caf\xc3", "\xed\xa0\x80", "héllo wörld ✓ 𝄞",
	"\x00\x01\x1f", strings.Repeat("x", 1024),
}

func init() {
	var all strings.Builder
	for c := range 0x80 {
		all.WriteByte(byte(c))
	}
	jsonStrings = append(jsonStrings, all.String())
}

// jsonTimes have every length of fraction, none, and a zone other than UTC.
var jsonTimes = []time.Time{
	time.Date(2026, 12, 7, 23, 1, 2, 0, time.UTC),
	time.Date(2026, 12, 7, 23, 1, 2, 123456000, time.UTC),
	time.Date(2026, 12, 7, 23, 1, 2, 100000000, time.UTC),
	time.Date(2026, 12, 7, 23, 1, 2, 1000, time.UTC),
	time.Date(1000, 1, 1, 0, 0, 0, 999999000, time.FixedZone("x", 5*3600+30*60)),
}

func TestJSONIsEncodingJSON(t *testing.T) {
	same := func(what string, got []byte, v any) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	for i, s := range jsonStrings {
		tm := jsonTimes[i%len(jsonTimes)]
		p := post{ID: int64(i) + 1, UserID: 9223372036854775807, Body: s, Version: int64(i * 1000), CreatedAt: tm, UpdatedAt: jsonTimes[(i+1)%len(jsonTimes)]}
		same("post", p.appendJSON(nil), p)
		u := user{ID: int64(i) + 1, Name: s, PostCount: int64(i), CreatedAt: tm, UpdatedAt: tm, version: 7}
		same("user", u.appendJSON(nil), u)
		same("error", (&errorBody{code: "not_found", message: s}).appendJSON(nil),
			map[string]map[string]string{"error": {"code": "not_found", "message": s}})
	}
	type list struct {
		Posts []post  `json:"posts"`
		Next  *string `json:"next"`
	}
	same("empty list", (&postList{}).appendJSON(nil), list{Posts: []post{}})
	posts := []post{{ID: 3, UserID: 1, Body: "<3>", Version: 2, CreatedAt: jsonTimes[1], UpdatedAt: jsonTimes[2]},
		{ID: 2, UserID: 1, Body: "two", Version: 1, CreatedAt: jsonTimes[0], UpdatedAt: jsonTimes[0]}}
	next := "/v1/users/1/posts?before=2&limit=2"
	same("list", (&postList{posts: posts, next: next}).appendJSON(nil), list{Posts: posts, Next: &next})
	same("last page", (&postList{posts: posts[:1]}).appendJSON(nil), list{Posts: posts[:1]})
}

func FuzzJSONString(f *testing.F) {
	for _, s := range jsonStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}
