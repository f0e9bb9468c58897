package cachepolicy

import "testing"

func TestIsHopByHop(t *testing.T) {
	for _, name := range []string{"Connection", "keep-alive", "Proxy-Connection", "TE", "Transfer-Encoding",
		"UPGRADE", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Authentication-Info", "Trailer"} {
		if !IsHopByHop([]byte(name)) {
			t.Errorf("IsHopByHop(%q) = false", name)
		}
	}
	for _, name := range []string{"Content-Length", "Trailers", "ETag", "", "Connections", "Authorization"} {
		if IsHopByHop([]byte(name)) {
			t.Errorf("IsHopByHop(%q) = true", name)
		}
	}
}

func TestListHas(t *testing.T) {
	tests := []struct {
		list, token string
		want        bool
	}{
		{"no-cache", "no-cache", true},
		{" No-Cache ", "no-cache", true},
		{"a, b ,c", "b", true},
		{"a,,c", "", false},
		{"abc", "b", false},
		{"", "x", false},
		{"x-foo, close", "close", true},
		{"*", "*", true},
	}
	for _, tt := range tests {
		if got := ListHas([]byte(tt.list), tt.token); got != tt.want {
			t.Errorf("ListHas(%q, %q) = %v", tt.list, tt.token, got)
		}
	}
}

func TestFieldRules(t *testing.T) {
	r := NewFieldRules("Edgecache-Groups", "edgecache-fresh")
	cc := ParseCacheControl([]byte(`max-age=5, private="X-User", no-cache="x-debug, x-trace"`))
	tests := []struct {
		name, connection    string
		forward, store, upd bool
	}{
		{"Content-Type", "", true, true, true},
		{"ETag", "", true, true, true},
		{"Content-Length", "", true, true, false},
		{"Connection", "", false, false, false},
		{"Keep-Alive", "", false, false, false},
		{"Transfer-Encoding", "", false, false, false},
		{"X-Hop", "close, x-hop", false, false, false},
		{"X-Hop", "close", true, true, true},
		{"Edgecache-Groups", "", false, false, false},
		{"EDGECACHE-FRESH", "", false, false, false},
		{"Age", "", true, false, true},
		{"Age", "age", false, false, false},
		{"Set-Cookie", "", true, true, false},
		{"x-user", "", true, false, false},
		{"X-Trace", "", true, false, false},
		{"X-Debug", "", true, false, false},
		{"X-Other", "", true, true, true},
	}
	for _, tt := range tests {
		n, c := []byte(tt.name), bytesOrNil(tt.connection)
		if got := r.Forward(n, c); got != tt.forward {
			t.Errorf("Forward(%q, %q) = %v", tt.name, tt.connection, got)
		}
		if got := r.Store(n, c, &cc); got != tt.store {
			t.Errorf("Store(%q, %q) = %v", tt.name, tt.connection, got)
		}
		if got := r.Update(n, c, &cc); got != tt.upd {
			t.Errorf("Update(%q, %q) = %v", tt.name, tt.connection, got)
		}
	}
	if !r.Store([]byte("X-User"), nil, nil) {
		t.Error("Store with nil directives dropped an ordinary field")
	}
	// RFC 9111 §3.1, §7.3: Set-Cookie is stored unless the operator strips
	// it; private="set-cookie" drops it either way.
	strip := NewFieldRules()
	strip.StripSetCookie = true
	for _, tt := range []struct {
		r    *FieldRules
		cc   string
		want bool
	}{
		{r, "max-age=60", true},
		{r, `max-age=60, private="Set-Cookie"`, false},
		{r, `max-age=60, no-cache="set-cookie"`, false},
		{strip, "max-age=60", false},
	} {
		cc := ParseCacheControl([]byte(tt.cc))
		if got := tt.r.Store([]byte("set-cookie"), nil, &cc); got != tt.want {
			t.Errorf("Store(Set-Cookie) with %q, strip %v = %v", tt.cc, tt.r.StripSetCookie, got)
		}
	}
}
