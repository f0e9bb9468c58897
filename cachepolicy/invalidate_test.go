package cachepolicy

import "testing"

func TestInvalidates(t *testing.T) {
	tests := []struct {
		method string
		status int
		want   bool
	}{
		{"POST", 201, true},
		{"PUT", 200, true},
		{"DELETE", 204, true},
		{"PATCH", 302, true},
		{"PURGE", 200, true}, // unknown methods count as unsafe
		{"POST", 400, false},
		{"POST", 500, false},
		{"POST", 100, false},
		{"GET", 200, false},
		{"HEAD", 200, false},
		{"OPTIONS", 200, false},
		{"TRACE", 200, false},
	}
	for _, tt := range tests {
		if got := Invalidates([]byte(tt.method), tt.status); got != tt.want {
			t.Errorf("Invalidates(%s, %d) = %v", tt.method, tt.status, got)
		}
	}
}

func TestAppendLocationKey(t *testing.T) {
	tests := []struct {
		path, location string
		want           string // "" = not invalidated
	}{
		{"/v1/users/42/posts", "/v1/posts/901", "http://example.com/v1/posts/901"},
		{"/v1/users/42/posts", "http://example.com/v1/posts/901", "http://example.com/v1/posts/901"},
		{"/v1/users/42/posts", "HTTP://EXAMPLE.COM:80/v1/posts/901?b=1&a=2#frag", "http://example.com/v1/posts/901?a=2&b=1"},
		{"/v1/users/42/posts", "901", "http://example.com/v1/users/42/901"},
		{"/v1/users/42/posts", "../posts/7", "http://example.com/v1/users/posts/7"},
		{"/v1/users/42/posts", "//example.com/x", "http://example.com/x"},
		{"/v1/users/42/posts", "//other.com/x", ""},
		{"/v1/users/42/posts", "http://other.com/v1/posts/1", ""},
		{"/v1/users/42/posts", "https://example.com/v1/posts/1", ""},
		{"/v1/users/42/posts", "http://example.com:8080/v1/posts/1", ""},
		{"/v1/users/42/posts", "http://user@example.com/v1/posts/1", ""},
		{"/v1/users/42/posts", "mailto:a@example.com", ""},
		{"/v1/users/42/posts", "", ""},
		{"/v1/users/42/posts", "http://[::1", ""},
		{"/v1/users/42/posts", "/a%zz", ""},
	}
	for _, tt := range tests {
		got, ok := AppendLocationKey(nil, []byte("http"), []byte("example.com"), []byte(tt.path), []byte(tt.location))
		if ok != (tt.want != "") || string(got) != tt.want {
			t.Errorf("AppendLocationKey(%q, %q) = %q, %v; want %q", tt.path, tt.location, got, ok, tt.want)
		}
	}
	// The key of a same-origin Location equals the key a later GET builds.
	got, _ := AppendLocationKey(nil, []byte("http"), []byte("example.com:80"), []byte("/x"), []byte("/v1/posts/9?z=1&a=%7e"))
	if want := key("http", "example.com", "/v1/posts/9", "a=~&z=1"); string(got) != want {
		t.Errorf("location key %q != request key %q", got, want)
	}
}
