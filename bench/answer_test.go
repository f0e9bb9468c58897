package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

// The scanner reads what encoding/json reads from the origin's answers, and
// refuses what it refuses.
func TestParseAnswers(t *testing.T) {
	long := strings.Repeat(`x\"y\\`, 200)
	post := `{"id":7,"user_id":3,"body":"` + long + `","version":12,"created_at":"2026-12-01T20:12:26Z","tags":[1,{"a":[true,false,null]}],"score":-1.5e3}`
	for _, tc := range []struct {
		in          string
		ok          bool
		id, version int64
	}{
		{post, true, 7, 12},
		{" \n{ \"version\" : 2 , \"id\" : 1 }\t", true, 1, 2},
		{`{"id":1}`, true, 1, -1},
		{`{"id":null,"version":3}`, true, -1, 3},
		{`{}`, true, -1, -1},
		{`{"id":1,"version":2`, false, 0, 0},
		{`{"id":1,"version":2}}`, false, 0, 0},
		{`{"id":1.5,"version":2}`, false, 0, 0},
		{`{"id":"1","version":2}`, false, 0, 0},
		{`{"id":1,"version":2,"x":tru}`, false, 0, 0},
		{`{"id":1,"body":"unterminated}`, false, 0, 0},
		{`[{"id":1}]`, false, 0, 0},
		{``, false, 0, 0},
		{`<html>502 Bad Gateway</html>`, false, 0, 0},
	} {
		got, ok := parsePost([]byte(tc.in))
		if ok != tc.ok || (ok && (got.id != tc.id || got.version != tc.version)) {
			t.Errorf("parsePost(%.60q) = %+v, %v; want id %d version %d, %v", tc.in, got, ok, tc.id, tc.version, tc.ok)
		}
	}

	profile := `{"id":4,"name":"ada \"the\" first","post_count":17,"created_at":"2026-12-01T20:12:26Z"}`
	if u, ok := parsePost([]byte(profile)); !ok || u.postCount != 17 {
		t.Errorf("profile: %+v, %v", u, ok)
	}
	if u, ok := parsePost([]byte(`{"id":4,"post_count":null}`)); !ok || u.postCount != -1 {
		t.Errorf("profile with null post_count: %+v, %v", u, ok)
	}

	list := `{"posts":[` + post + `,{"id":5,"version":1,"body":"b"}],"next_cursor":"5"}`
	var want struct {
		Posts []struct{ ID, Version int64 }
	}
	if err := json.Unmarshal([]byte(list), &want); err != nil {
		t.Fatal(err)
	}
	page, ok := parseList([]byte(list), []listedPost{{ID: 99}}[:0])
	if !ok || len(page) != len(want.Posts) {
		t.Fatalf("parseList = %+v, %v; want %+v", page, ok, want.Posts)
	}
	for i, p := range want.Posts {
		if page[i] != (listedPost{p.ID, p.Version}) {
			t.Errorf("post %d: %+v, want %+v", i, page[i], p)
		}
	}
	for _, in := range []string{`{"posts":[]}`, `{"posts":null}`, `{"next_cursor":""}`} {
		if page, ok := parseList([]byte(in), nil); !ok || len(page) != 0 {
			t.Errorf("parseList(%q) = %+v, %v; want an empty page", in, page, ok)
		}
	}
	for _, in := range []string{`{"posts":[{"id":1,"version":2}`, `{"posts":{"id":1}}`, `{"posts":[1]}`} {
		if _, ok := parseList([]byte(in), nil); ok {
			t.Errorf("parseList(%q) accepted", in)
		}
	}
}
