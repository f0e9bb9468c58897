package cachepolicy

import "testing"

func TestNewRequest(t *testing.T) {
	tests := []struct {
		cc, pragma string
		wantPragma bool
		wantFlags  Flags
	}{
		{"", "", false, 0},
		{"", "no-cache", true, 0},
		{"", "No-Cache, x", true, 0},
		{"", "x=no-cache", false, 0},
		{"max-age=5", "no-cache", false, HasMaxAge}, // Cache-Control wins over Pragma
		{"  ", "no-cache", true, 0},
		{"no-cache, only-if-cached", "", false, NoCache | OnlyIfCached},
	}
	for _, tt := range tests {
		r := NewRequest([]byte("GET"), bytesOrNil(tt.cc), bytesOrNil(tt.pragma), false)
		if r.PragmaNoCache != tt.wantPragma || r.CacheControl.Flags != tt.wantFlags {
			t.Errorf("NewRequest(cc %q, pragma %q) = pragma %v flags %b; want %v %b",
				tt.cc, tt.pragma, r.PragmaNoCache, r.CacheControl.Flags, tt.wantPragma, tt.wantFlags)
		}
	}
}

func TestStorable(t *testing.T) {
	type row struct {
		name      string
		method    string
		reqCC     string
		auth      bool
		status    int
		cc        string
		cdn       string
		expires   string
		vary      string
		setCookie bool
		want      string // "" = storable, else the reason
	}
	tests := []row{
		{name: "plain 200 heuristic", status: 200},
		{name: "origin contract", status: 200, cc: "public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300"},
		{name: "HEAD not stored", method: "HEAD", status: 200, cc: "max-age=60", want: ReasonMethod},
		{name: "POST not stored", method: "POST", status: 200, cc: "max-age=60", want: ReasonMethod},
		{name: "lowercase get is another method", method: "get", status: 200, cc: "max-age=60", want: ReasonMethod},
		{name: "no-store", status: 200, cc: "max-age=60, no-store", want: ReasonNoStore},
		{name: "request no-store", reqCC: "no-store", status: 200, cc: "max-age=60", want: ReasonNoStore},
		{name: "private", status: 200, cc: "private, max-age=60", want: ReasonPrivate},
		{name: "qualified private stored", status: 200, cc: `private="x-user", max-age=60`},
		{name: "no-cache stored", status: 200, cc: "no-cache"},
		{name: "authorization without permission", auth: true, status: 200, cc: "max-age=60", want: ReasonAuthorization},
		{name: "authorization with public", auth: true, status: 200, cc: "public, max-age=60"},
		{name: "authorization with s-maxage", auth: true, status: 200, cc: "s-maxage=60"},
		{name: "authorization with must-revalidate", auth: true, status: 200, cc: "must-revalidate, max-age=60"},
		{name: "vary star", status: 200, cc: "max-age=60", vary: "accept, *", want: ReasonVaryStar},
		{name: "vary list", status: 200, cc: "max-age=60", vary: "accept-encoding"},
		// RFC 9111 §7.3: Set-Cookie does not inhibit caching when the
		// origin gave explicit freshness; heuristics alone do not store it.
		{name: "set-cookie with max-age", status: 200, cc: "max-age=60", setCookie: true},
		{name: "set-cookie with public", status: 200, cc: "public, max-age=60", setCookie: true},
		{name: "set-cookie with expires", status: 200, expires: "Sun, 06 Nov 2094 08:49:37 GMT", setCookie: true},
		{name: "set-cookie with heuristic only", status: 200, setCookie: true, want: ReasonSetCookie},
		{name: "set-cookie excluded by private=", status: 200, cc: `max-age=60, private="Set-Cookie"`, setCookie: true},
		{name: "set-cookie excluded by no-cache=", status: 200, cc: `max-age=60, no-cache="set-cookie"`, setCookie: true},
		{name: "206 never", status: 206, cc: "max-age=60", want: ReasonStatus},
		{name: "304 never", status: 304, cc: "max-age=60", want: ReasonStatus},
		{name: "100 never", status: 100, cc: "max-age=60", want: ReasonStatus},
		{name: "103 never", status: 103, cc: "max-age=60", want: ReasonStatus},
		{name: "101 never", status: 101, cc: "max-age=60", want: ReasonStatus},
		{name: "600 is not a status", status: 600, cc: "max-age=60", want: ReasonStatus},
		// RFC 9111 §3: any final status with explicit freshness.
		{name: "299 with max-age", status: 299, cc: "max-age=60"},
		{name: "400 with max-age", status: 400, cc: "max-age=60"},
		{name: "499 with max-age", status: 499, cc: "max-age=60"},
		{name: "500 with max-age", status: 500, cc: "max-age=60"},
		{name: "502 with s-maxage", status: 502, cc: "s-maxage=60"},
		{name: "503 with expires", status: 503, expires: "Sun, 06 Nov 2094 08:49:37 GMT"},
		{name: "504 with max-age", status: 504, cc: "max-age=60"},
		{name: "599 with max-age", status: 599, cc: "max-age=60"},
		{name: "500 with public (heuristic)", status: 500, cc: "public"},
		{name: "500 without freshness", status: 500, want: ReasonStatus},
		{name: "503 no-store", status: 503, cc: "no-store, max-age=60", want: ReasonNoStore},
		{name: "599 private", status: 599, cc: "private, max-age=60", want: ReasonPrivate},
		{name: "404 heuristic", status: 404},
		{name: "410 heuristic", status: 410},
		{name: "302 without freshness", status: 302, want: ReasonStatus},
		{name: "302 with max-age", status: 302, cc: "max-age=60"},
		{name: "307 with expires", status: 307, expires: "Sun, 06 Nov 2094 08:49:37 GMT"},
		{name: "307 with invalid expires still explicit", status: 307, expires: "0"},
		{name: "302 with public", status: 302, cc: "public"},
		{name: "302 with expires ignored under targeted field", status: 302, cdn: "no-transform", expires: "Sun, 06 Nov 2094 08:49:37 GMT", want: ReasonStatus},
		// Vary over several lines, joined: one "*" among them forbids reuse.
		{name: "vary star on a second line", status: 200, cc: "max-age=60", vary: "Accept-Encoding, *", want: ReasonVaryStar},
		{name: "must-understand with 500", status: 500, cc: "must-understand, no-store, max-age=60", want: ReasonMustUnderstand},
		{name: "must-understand overrides no-store for understood status", status: 200, cc: "must-understand, no-store, max-age=60"},
		{name: "must-understand with unknown status", status: 299, cc: "must-understand, no-store, max-age=60", want: ReasonMustUnderstand},
		{name: "cdn no-store overrides cache-control", status: 200, cc: "public, max-age=60", cdn: "no-store", want: ReasonNoStore},
		{name: "cdn max-age overrides cache-control no-store", status: 200, cc: "no-store", cdn: "max-age=60"},
	}
	for _, tt := range tests {
		method := tt.method
		if method == "" {
			method = "GET"
		}
		req := NewRequest([]byte(method), bytesOrNil(tt.reqCC), nil, tt.auth)
		resp := Response{
			Status:       tt.status,
			CacheControl: ResponseDirectives(nil, bytesOrNil(tt.cdn), bytesOrNil(tt.cc)),
			Expires:      bytesOrNil(tt.expires),
			Vary:         bytesOrNil(tt.vary),
			SetCookie:    tt.setCookie,
		}
		ok, reason := Storable(&req, &resp)
		if ok != (tt.want == "") || reason != tt.want {
			t.Errorf("%s: Storable = %v, %q; want reason %q", tt.name, ok, reason, tt.want)
		}
	}
}
