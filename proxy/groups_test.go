package proxy

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseGroups(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []group
		bad  bool
	}{
		{"", nil, false},
		{"post/7=3", []group{{"post/7", 3}}, false},
		{"  post/901=1 user/42=6\tuser/42/posts=13 ", []group{{"post/901", 1}, {"user/42", 6}, {"user/42/posts", 13}}, false},
		{"post/7", nil, true},
		{"post/7=", nil, true},
		{"=3", nil, true},
		{"post/7=0", []group{{"post/7", 0}}, false}, // no such row (a 404)
		{"post/7=-1", nil, true},
		{"post/7=1x", nil, true},
		{"post/7=99999999999999999999999", nil, true},
		{"a=1 b c=2", []group{{"a", 1}, {"c", 2}}, true},
		{"p\"x=1", nil, true},
		{strings.Repeat("x", 201) + "=1", nil, true},
	} {
		got, err := parseGroups([]byte(tc.in))
		if (err != nil) != tc.bad || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseGroups(%q) = %v, %v; want %v, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func FuzzParseGroups(f *testing.F) {
	f.Add("post/7=3 user/42=6 user/42/posts=13")
	f.Add("a=1 b c=")
	f.Fuzz(func(t *testing.T, in string) {
		gs, _ := parseGroups([]byte(in))
		if len(gs) > maxGroups {
			t.Fatalf("%d groups", len(gs))
		}
		for _, g := range gs {
			if g.name == "" || len(g.name) > maxGroupName || strings.ContainsAny(g.name, " \t=") {
				t.Fatalf("bad group %+v from %q", g, in)
			}
		}
	})
}
