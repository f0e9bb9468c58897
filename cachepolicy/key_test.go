package cachepolicy

import (
	"strings"
	"testing"
)

func key(scheme, host, path, query string) string {
	return string(AppendKey(nil, []byte(scheme), []byte(host), []byte(path), []byte(query)))
}

func TestAppendKey(t *testing.T) {
	tests := []struct {
		scheme, host, path, query string
		want                      string
	}{
		{"http", "example.com", "/a", "", "http://example.com/a"},
		{"HTTP", "Example.COM", "/a", "", "http://example.com/a"},
		{"http", "example.com:80", "/a", "", "http://example.com/a"},
		{"http", "example.com:", "/a", "", "http://example.com/a"},
		{"https", "example.com:443", "/a", "", "https://example.com/a"},
		{"https", "example.com:80", "/a", "", "https://example.com:80/a"},
		{"http", "example.com:8080", "/a", "", "http://example.com:8080/a"},
		{"http", "[::1]:80", "/a", "", "http://[::1]/a"},
		{"http", "[::1]", "/a", "", "http://[::1]/a"},
		{"http", "[::1]:", "/a", "", "http://[::1]/a"},
		{"http", "::1", "/a", "", "http://::1/a"},
		{"http", "::80", "/a", "", "http://::80/a"},
		{"http", "x:80:80", "/a", "", "http://x:80:80/a"},
		{"http", ":80", "/a", "", "http://:80/a"},
		{"http", ":", "/a", "", "http://:/a"},
		{"http", "evil.com/x", "/a", "", "http://evil.com%2Fx/a"},
		{"http", "ex%61mple.com", "/a", "", "http://ex%2561mple.com/a"},
		{"http", "h", "", "", "http://h/"},
		{"http", "h", "a", "", "http://h/a"},
		{"http", "h", "/%7euser/%2f%2F", "", "http://h/~user/%2F%2F"},
		{"http", "h", "/%41%42c", "", "http://h/ABc"},
		{"http", "h", "/a b", "", "http://h/a%20b"},
		{"http", "h", "/a?b", "", "http://h/a%3Fb"},
		{"http", "h", "/a#b", "", "http://h/a%23b"},
		{"http", "h", "/100%", "", "http://h/100%25"},
		{"http", "h", "/%zz", "", "http://h/%25zz"},
		{"http", "h", "/\xff\x00", "", "http://h/%FF%00"},
		{"http", "h", "/a/../b/./c", "", "http://h/a/../b/./c"},
		{"http", "h", "/a", "?", "http://h/a??"}, // the caller strips the separating "?"
		{"http", "h", "/a", "b=2&a=1", "http://h/a?a=1&b=2"},
		{"http", "h", "/a", "a=1&b=2", "http://h/a?a=1&b=2"},
		{"http", "h", "/a", "a=2&b=1&a=1", "http://h/a?a=2&a=1&b=1"},
		{"http", "h", "/a", "&&b&&a=&", "http://h/a?a=&b"},
		{"http", "h", "/a", "&", "http://h/a"},
		{"http", "h", "/a", "x=%7e%2f&y=a+b", "http://h/a?x=~%2F&y=a+b"},
		{"http", "h", "/a", "x=%26&y", "http://h/a?x=%26&y"},
		{"http", "h", "/a", "q=a b", "http://h/a?q=a%20b"},
		{"http", "h", "/a", "q=?/:@", "http://h/a?q=?/:@"},
	}
	for _, tt := range tests {
		if got := key(tt.scheme, tt.host, tt.path, tt.query); got != tt.want {
			t.Errorf("AppendKey(%q, %q, %q, %q) = %q, want %q", tt.scheme, tt.host, tt.path, tt.query, got, tt.want)
		}
	}
}

func TestAppendKeyManyParams(t *testing.T) {
	var q []string
	for i := 99; i >= 0; i-- {
		q = append(q, "p"+string(rune('a'+i%26))+strings.Repeat("x", i)+"=1")
	}
	got := key("http", "h", "/", strings.Join(q, "&"))
	again := key("http", "h", "/", strings.Join(reverse(q), "&"))
	if got != again {
		t.Errorf("order of 100 params changes the key:\n%s\n%s", got, again)
	}
	if len(got) != len("http://h/?")+len(strings.Join(q, "&")) {
		t.Errorf("length %d", len(got))
	}
}

func reverse(s []string) []string {
	r := make([]string, len(s))
	for i, v := range s {
		r[len(s)-1-i] = v
	}
	return r
}

func TestAppendVary(t *testing.T) {
	tests := []struct {
		in, want string
		star     bool
	}{
		{"", "", false},
		{"Accept-Encoding", "accept-encoding", false},
		{"accept-language, Accept-Encoding", "accept-encoding,accept-language", false},
		{"a, A, a ,b", "a,b", false},
		{" , ,", "", false},
		{"bad name, x", "x", false},
		{"x, *", "", true},
		{"*", "", true},
	}
	for _, tt := range tests {
		got, star := AppendVary(nil, []byte(tt.in))
		if string(got) != tt.want || star != tt.star {
			t.Errorf("AppendVary(%q) = %q, %v", tt.in, got, star)
		}
		if !canonicalVary(got) {
			t.Errorf("AppendVary(%q) = %q, not canonical", tt.in, got)
		}
	}
}

func TestAppendVaryKey(t *testing.T) {
	vk := func(vary string, h map[string]string) string {
		return string(AppendVaryKey(nil, []byte(vary), func(name []byte) []byte {
			if v, ok := h[string(name)]; ok {
				return []byte(v)
			}
			return nil
		}))
	}
	same := []struct{ a, b map[string]string }{
		{map[string]string{"accept-encoding": "gzip, br"}, map[string]string{"accept-encoding": " GZIP,br  "}},
		{map[string]string{"accept-encoding": "gzip,  br"}, map[string]string{"accept-encoding": "gzip ,br"}},
		{map[string]string{"x-a": "a  b"}, map[string]string{"x-a": "a\tb"}},
		{map[string]string{}, map[string]string{"x-a": ""}},
	}
	for _, tt := range same {
		if a, b := vk("accept-encoding,x-a", tt.a), vk("accept-encoding,x-a", tt.b); a != b {
			t.Errorf("%v and %v give different keys %q %q", tt.a, tt.b, a, b)
		}
	}
	differ := []struct{ a, b map[string]string }{
		{map[string]string{"x-a": "A"}, map[string]string{"x-a": "a"}}, // x-a is case-sensitive
		{map[string]string{"accept-encoding": "gzip"}, map[string]string{"accept-encoding": "br"}},
		{map[string]string{"accept-encoding": "a\x00x-a\x00"}, map[string]string{"accept-encoding": "a", "x-a": ""}},
		{map[string]string{"accept-encoding": "ab"}, map[string]string{"accept-encoding": "a b"}},
	}
	for _, tt := range differ {
		if a, b := vk("accept-encoding,x-a", tt.a), vk("accept-encoding,x-a", tt.b); a == b {
			t.Errorf("%v and %v give the same key %q", tt.a, tt.b, a)
		}
	}
	if got := vk("", map[string]string{"x": "y"}); got != "" {
		t.Errorf("empty Vary appended %q", got)
	}
}

func TestAppendMemcacheKey(t *testing.T) {
	k1 := AppendMemcacheKey(nil, "ec:", []byte("http://h/a"))
	k2 := AppendMemcacheKey(nil, "ec:", []byte("http://h/b"))
	if len(k1) != 3+MemcacheKeyLen || !strings.HasPrefix(string(k1), "ec:") || string(k1) == string(k2) {
		t.Errorf("keys %q %q", k1, k2)
	}
	if !validMemcacheKey(k1) {
		t.Errorf("%q is not a valid memcached key", k1)
	}
	if string(AppendMemcacheKey(nil, "ec:", []byte("http://h/a"))) != string(k1) {
		t.Error("not deterministic")
	}
	long := AppendMemcacheKey(nil, "ec:", []byte(strings.Repeat("\x00 \r\n", 1000)))
	if !validMemcacheKey(long) || len(long) != 3+MemcacheKeyLen {
		t.Errorf("hostile input gave %q", long)
	}
}

// validMemcacheKey is memcached's rule: at most 250 bytes, no control
// characters or spaces.
func validMemcacheKey(k []byte) bool {
	if len(k) == 0 || len(k) > 250 {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func TestCheckKeyPrefix(t *testing.T) {
	for _, p := range []string{"", "ec:", "edgecache/v1/"} {
		if err := CheckKeyPrefix(p); err != nil {
			t.Errorf("CheckKeyPrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"a b", "a\n", strings.Repeat("x", 65), "é"} {
		if err := CheckKeyPrefix(p); err == nil {
			t.Errorf("CheckKeyPrefix(%q) accepted", p)
		}
	}
}
