package origin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput sends each kind of bad request and checks the status, the
// JSON error code, the access log line, and that the database is unchanged.
func TestBadInput(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u := ts.newUser()
	p := ts.newPost(u, "original")
	auth := "Bearer " + u.Token
	users := "/v1/users"
	posts := fmt.Sprintf("/v1/users/%d/posts", u.ID)
	one := fmt.Sprintf("/v1/posts/%d", p.ID)
	list := fmt.Sprintf("/v1/users/%d/posts", u.ID)
	const json = "application/json"

	cases := []struct {
		name         string
		method, path string
		contentType  string
		body         string
		status       int
		code         string
	}{
		// POST /v1/users
		{"invalid JSON", "POST", users, json, `{"name":`, 400, "invalid_json"},
		{"empty body", "POST", users, json, ``, 400, "invalid_json"},
		{"wrong type", "POST", users, json, `{"name":1,"email":"a@example.com"}`, 400, "wrong_type"},
		{"not an object", "POST", users, json, `["a@example.com"]`, 400, "wrong_type"},
		{"unknown field", "POST", users, json, `{"name":"a","email":"a@example.com","admin":true}`, 400, "unknown_field"},
		{"missing field", "POST", users, json, `{"name":"a"}`, 400, "missing_field"},
		{"null field", "POST", users, json, `{"name":null,"email":"a@example.com"}`, 400, "missing_field"},
		{"second JSON value", "POST", users, json, `{"name":"a","email":"a@example.com"} {}`, 400, "invalid_json"},
		{"trailing garbage", "POST", users, json, `{"name":"a","email":"a@example.com"}x`, 400, "invalid_json"},
		{"non-UTF-8", "POST", users, json, "{\"name\":\"\xff\xfe\",\"email\":\"a@example.com\"}", 400, "invalid_utf8"},
		{"empty name", "POST", users, json, `{"name":"","email":"a@example.com"}`, 400, "invalid_name"},
		{"long name", "POST", users, json, `{"name":"` + strings.Repeat("é", 101) + `","email":"a@example.com"}`, 400, "invalid_name"},
		{"control character in name", "POST", users, json, `{"name":"a\u0000b","email":"a@example.com"}`, 400, "invalid_name"},
		{"bad email", "POST", users, json, `{"name":"a","email":"not an email"}`, 400, "invalid_email"},
		{"email with display name", "POST", users, json, `{"name":"a","email":"A <a@example.com>"}`, 400, "invalid_email"},
		{"text/plain", "POST", users, "text/plain", `{"name":"a","email":"a@example.com"}`, 415, "unsupported_media_type"},
		{"no Content-Type", "POST", users, "", `{"name":"a","email":"a@example.com"}`, 415, "unsupported_media_type"},
		{"latin-1 charset", "POST", users, "application/json; charset=latin1", `{"name":"a","email":"a@example.com"}`, 415, "unsupported_media_type"},
		{"huge request body", "POST", users, json, `{"name":"` + strings.Repeat("a", 20000) + `","email":"a@example.com"}`, 413, "body_too_large"},

		// POST /v1/users/{id}/posts
		{"post of 1025 bytes", "POST", posts, json, jsonPost(strings.Repeat("a", 1025)), 413, "body_too_large"},
		{"post of 1026 bytes in 342 characters", "POST", posts, json, jsonPost(strings.Repeat("€", 342)), 413, "body_too_large"},
		{"escaped post over 1024 bytes", "POST", posts, json, `{"body":"` + strings.Repeat(`\u0001`, 1025) + `"}`, 413, "body_too_large"},
		{"empty post", "POST", posts, json, `{"body":""}`, 400, "invalid_body"},
		{"post body not a string", "POST", posts, json, `{"body":["x"]}`, 400, "wrong_type"},
		{"post with user_id", "POST", posts, json, `{"body":"x","user_id":2}`, 400, "unknown_field"},
		{"post missing body", "POST", posts, json, `{}`, 400, "missing_field"},
		{"post non-UTF-8", "POST", posts, json, "{\"body\":\"\xc3\x28\"}", 400, "invalid_utf8"},
		{"post with a lone surrogate", "POST", posts, json, `{"body":"\ud800"}`, 400, "invalid_utf8"},
		{"post form-encoded", "POST", posts, "application/x-www-form-urlencoded", `body=x`, 415, "unsupported_media_type"},
		{"user id not a number", "POST", "/v1/users/abc/posts", json, `{"body":"x"}`, 400, "invalid_id"},

		// PUT /v1/posts/{id}
		{"put invalid JSON", "PUT", one, json, `{"body":"x"`, 400, "invalid_json"},
		{"put too long", "PUT", one, json, jsonPost(strings.Repeat("b", 1025)), 413, "body_too_large"},
		{"put wrong Content-Type", "PUT", one, "text/html", `{"body":"x"}`, 415, "unsupported_media_type"},
		{"put unknown field", "PUT", one, json, `{"body":"x","version":9}`, 400, "unknown_field"},
		{"put lone low surrogate", "PUT", one, json, `{"body":"a\udc00"}`, 400, "invalid_utf8"},

		// ids: positive decimal integers, no sign or leading zeros, fit int64
		{"id zero", "GET", "/v1/posts/0", "", "", 400, "invalid_id"},
		{"id negative", "GET", "/v1/posts/-1", "", "", 400, "invalid_id"},
		{"id plus sign", "GET", "/v1/posts/+1", "", "", 400, "invalid_id"},
		{"id leading zero", "GET", "/v1/posts/007", "", "", 400, "invalid_id"},
		{"id overflow", "GET", "/v1/posts/9223372036854775808", "", "", 400, "invalid_id"},
		{"id huge", "GET", "/v1/posts/99999999999999999999999999", "", "", 400, "invalid_id"},
		{"id exponent", "GET", "/v1/posts/1e3", "", "", 400, "invalid_id"},
		{"id with space", "GET", "/v1/posts/%201", "", "", 400, "invalid_id"},
		{"id hex", "GET", "/v1/users/0x10", "", "", 400, "invalid_id"},
		{"put id overflow", "PUT", "/v1/posts/18446744073709551616", json, `{"body":"x"}`, 400, "invalid_id"},
		{"delete id text", "DELETE", "/v1/posts/last", "", "", 400, "invalid_id"},

		// list query
		{"limit too large", "GET", list + "?limit=1000000", "", "", 400, "invalid_limit"},
		{"limit overflow", "GET", list + "?limit=99999999999999999999", "", "", 400, "invalid_limit"},
		{"limit zero", "GET", list + "?limit=0", "", "", 400, "invalid_limit"},
		{"limit negative", "GET", list + "?limit=-5", "", "", 400, "invalid_limit"},
		{"limit text", "GET", list + "?limit=all", "", "", 400, "invalid_limit"},
		{"limit twice", "GET", list + "?limit=1&limit=2", "", "", 400, "invalid_limit"},
		{"before text", "GET", list + "?before=yesterday", "", "", 400, "invalid_before"},
		{"before zero", "GET", list + "?before=0", "", "", 400, "invalid_before"},
		{"malformed query", "GET", list + "?limit=%zz", "", "", 400, "invalid_query"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dbState(t, db)
			ts.access.TakeAll()
			headers := []string{"Authorization", auth, "Content-Type", tc.contentType}
			r := ts.doRaw(tc.method, tc.path, tc.body, headers...)
			wantError(t, r, tc.status, tc.code)
			if after := dbState(t, db); after != before {
				t.Fatal("the database changed")
			}
			logged := ts.access.TakeAll()
			if len(logged) != 1 {
				t.Fatalf("%d access log lines, want 1", len(logged))
			}
			fields := logged[0]
			if fields["status"] != float64(tc.status) || fields["error_code"] != tc.code {
				t.Fatalf("access log line %v", fields)
			}
		})
	}

	// The limits are inclusive: 1024 bytes of text is a valid post.
	ts.do("POST", posts, jsonPost(strings.Repeat("€", 341)+"a"), "Authorization", auth).expect(t, http.StatusCreated)
	ts.do("POST", posts, jsonPost(strings.Repeat("z", 1024)), "Authorization", auth).expect(t, http.StatusCreated)
	ts.do("GET", list+"?limit=100&before=9223372036854775807", "").expect(t, http.StatusOK)
}
