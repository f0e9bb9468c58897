package origin

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWireHeaders sends raw requests, each on a connection of its own, and
// checks each answer header by header: its status line, exactly which
// fields it carries (no Server, no default Content-Type, no Connection
// unless the client asked to close), their values, and a Content-Length
// that matches the body (and the GET's on HEAD). It pins what the origin
// sent on the wire when it ran on net/http, so that the fasthttp server
// keeps it.
func TestWireHeaders(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u := ts.newUser()
	p := ts.newPost(u, "on the wire")
	gone := ts.newPost(u, "to delete")
	// A Last-Modified an hour ago is strong, so that it is always sent.
	past := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	if _, err := db.Exec("UPDATE posts SET updated_at = ? WHERE id = ?", past, p.ID); err != nil {
		t.Fatal(err)
	}
	post := fmt.Sprintf("/v1/posts/%d", p.ID)
	auth := "Authorization: Bearer " + u.Token + "\r\n"
	const jsonType = "Content-Type: application/json\r\n"
	cacheable := map[string]string{
		"Cache-Control":           ts.cacheControl,
		"Edgecache-Cache-Control": ts.edgecacheCacheControl,
		"Etag":                    `"2"`, // the UPDATE above moved the version
		"Last-Modified":           past.Format(http.TimeFormat),
		"Edgecache-Groups":        fmt.Sprintf("post/%d=2", p.ID),
	}
	withJSON := func(h map[string]string) map[string]string {
		h = maps.Clone(h)
		h["Content-Type"] = "application/json"
		return h
	}
	noStore := map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json"}
	const (
		hasLength  = iota // a Content-Length that matches the body
		noLength          // none: 204, 304
		headLength        // HEAD: the GET's, and no body
	)
	var getLength string

	for _, tc := range []struct {
		name    string
		request string            // without the Host line and the blank line
		body    string            // sent after the head, with its Content-Length
		status  string            // the status line
		header  map[string]string // every field but Date and Content-Length, with its value ("*": any)
		length  int               // hasLength, noLength or headLength
	}{
		{"GET", "GET " + post, "", "HTTP/1.1 200 OK", withJSON(cacheable), hasLength},
		{"HEAD", "HEAD " + post, "", "HTTP/1.1 200 OK", withJSON(cacheable), headLength},
		{"304", "GET " + post + " HTTP/1.1\r\nIf-None-Match: \"2\"", "", "HTTP/1.1 304 Not Modified", cacheable, noLength},
		{"absent", "GET /v1/posts/9223372036854775807", "", "HTTP/1.1 404 Not Found",
			map[string]string{"Cache-Control": "public, max-age=0, s-maxage=10", "Content-Type": "application/json",
				"Edgecache-Groups": "post/9223372036854775807=0"}, hasLength},
		{"bad id", "GET /v1/posts/abc", "", "HTTP/1.1 400 Bad Request", noStore, hasLength},
		{"unknown path", "GET /nope", "", "HTTP/1.1 404 Not Found", noStore, hasLength},
		{"not clean", "GET /v1//posts/1", "", "HTTP/1.1 404 Not Found", noStore, hasLength},
		{"method", "PATCH " + post, "", "HTTP/1.1 405 Method Not Allowed",
			map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json", "Allow": "DELETE, GET, HEAD, PUT"}, hasLength},
		{"media type", "POST /v1/users HTTP/1.1\r\nContent-Type: text/plain", `{}`, "HTTP/1.1 415 Unsupported Media Type", noStore, hasLength},
		{"no token", "POST /v1/users/" + strconv.FormatInt(u.ID, 10) + "/posts HTTP/1.1\r\n" + jsonType[:len(jsonType)-2], `{"body":"x"}`,
			"HTTP/1.1 401 Unauthorized",
			map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json", "Www-Authenticate": `Bearer realm="edgecache"`}, hasLength},
		{"too large", "POST /v1/users HTTP/1.1\r\n" + jsonType[:len(jsonType)-2], strings.Repeat(" ", maxRequestBytes+1),
			"HTTP/1.1 413 Request Entity Too Large", noStore, hasLength},
		{"PUT", "PUT " + post + " HTTP/1.1\r\n" + auth + jsonType[:len(jsonType)-2], `{"body":"changed"}`, "HTTP/1.1 200 OK",
			map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json",
				"Edgecache-Groups": "*"}, hasLength},
		{"DELETE", "DELETE /v1/posts/" + strconv.FormatInt(gone.ID, 10) + " HTTP/1.1\r\n" + auth[:len(auth)-2], "", "HTTP/1.1 204 No Content",
			map[string]string{"Cache-Control": "no-store",
				"Edgecache-Groups": "*"}, noLength},
		{"healthz", "GET /healthz", "", "HTTP/1.1 200 OK", noStore, hasLength},
		{"close", "GET /healthz HTTP/1.1\r\nConnection: close", "", "HTTP/1.1 200 OK",
			map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json", "Connection": "close"}, hasLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := tc.request
			if !strings.Contains(head, "\r\n") && !strings.HasSuffix(head, "HTTP/1.1") {
				head += " HTTP/1.1"
			}
			raw := head + "\r\nHost: origin\r\n"
			if tc.body != "" {
				raw += "Content-Length: " + strconv.Itoa(len(tc.body)) + "\r\n"
			}
			raw += "\r\n" + tc.body
			status, header, body := rawExchange(t, ts, raw, strings.HasPrefix(tc.request, "HEAD "))
			if status != tc.status {
				t.Errorf("status line %q, want %q", status, tc.status)
			}
			var names []string
			for name := range header {
				names = append(names, name)
			}
			slices.Sort(names)
			var wantNames []string
			for name := range tc.header {
				wantNames = append(wantNames, name)
			}
			wantNames = append(wantNames, "Date")
			if tc.length != noLength {
				wantNames = append(wantNames, "Content-Length")
			}
			slices.Sort(wantNames)
			if !slices.Equal(names, wantNames) {
				t.Errorf("fields %q, want %q", names, wantNames)
			}
			for name, want := range tc.header {
				if got := header[name]; len(got) != 1 || got[0] != want && (want != "*" || got[0] == "") {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if date, err := http.ParseTime(header.Get("Date")); err != nil || time.Since(date) > time.Minute || header.Get("Date") != date.Format(http.TimeFormat) {
				t.Errorf("Date %q", header.Get("Date"))
			}
			length := header.Get("Content-Length")
			switch tc.length {
			case headLength:
				if length != getLength {
					t.Errorf("HEAD: Content-Length %q, the GET's %q", length, getLength)
				}
			case hasLength:
				if length != strconv.Itoa(len(body)) {
					t.Errorf("Content-Length %q, body of %d bytes", length, len(body))
				}
			}
			if tc.name == "GET" {
				getLength = length
			}
		})
	}
}

// rawExchange writes one raw request on a fresh connection and reads its
// answer: the status line, the fields as sent (names canonical), the body.
func rawExchange(t *testing.T, ts *testServer, request string, head bool) (string, http.Header, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		name, value, _ := strings.Cut(l, ":")
		header.Add(name, strings.TrimSpace(value))
	}
	var body []byte
	if n, err := strconv.Atoi(header.Get("Content-Length")); err == nil && !head { // HEAD has no body to read
		body = make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
	}
	return strings.TrimRight(line, "\r\n"), header, body
}

// TestMalformedRequests: what fasthttp cannot read, or a path that does not
// decode, gets the JSON error shape, no-store, and (before routing) a
// closed connection, where net/http answered in plain text.
func TestMalformedRequests(t *testing.T) {
	ts := startServer(t, testConfig(t))
	// Exactly maxHeaderBytes of head without its end: the server reads all
	// of it before refusing, so its close is no reset that could lose the
	// answer.
	head := "GET /healthz HTTP/1.1\r\nHost: origin\r\nX-Long: "
	tooLong := head + strings.Repeat("a", maxHeaderBytes-len(head))
	for _, tc := range []struct {
		name, request, status, code string
		closes                      bool
	}{
		{"bad escape", "GET /v1/posts/%zz HTTP/1.1\r\nHost: origin\r\n\r\n", "HTTP/1.1 400 Bad Request", "bad_request", false},
		{"garbage", "GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request", "bad_request", true},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request", "bad_request", true},
		{"head too long", tooLong, "HTTP/1.1 431 Request Header Fields Too Large", "headers_too_large", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := rawExchange(t, ts, tc.request, false)
			r := reply{header: header, body: body}
			if status != tc.status || r.errorCode() != tc.code {
				t.Fatalf("%s %s, want %s with code %s", status, body, tc.status, tc.code)
			}
			if cc := header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if closes := header.Get("Connection") == "close"; closes != tc.closes {
				t.Errorf("Connection %q", header.Get("Connection"))
			}
		})
	}
	// A head of half the limit is read: the limit is maxHeaderBytes, not
	// fasthttp's default 4 KiB.
	long := head + strings.Repeat("a", maxHeaderBytes/2) + "\r\n\r\n"
	if status, _, body := rawExchange(t, ts, long, false); status != "HTTP/1.1 200 OK" {
		t.Fatalf("a head of %d bytes: %s %s", len(long), status, body)
	}
}

// TestDrainClosesConnections: once draining, every answer says
// "Connection: close" and the connection ends, so that keep-alive clients
// reconnect, to another instance.
func TestDrainClosesConnections(t *testing.T) {
	ts := startServer(t, testConfig(t))
	if _, header, _ := rawExchange(t, ts, "GET /healthz HTTP/1.1\r\nHost: origin\r\n\r\n", false); header.Get("Connection") != "" {
		t.Fatalf("before the drain: Connection %q", header.Get("Connection"))
	}
	ts.Drain()
	status, header, _ := rawExchange(t, ts, "GET /healthz HTTP/1.1\r\nHost: origin\r\n\r\n", false)
	if status != "HTTP/1.1 200 OK" || header.Get("Connection") != "close" {
		t.Fatalf("draining: %s, Connection %q", status, header.Get("Connection"))
	}
}

// TestAppendRemote: the access log's remote is what net.TCPAddr.String says.
func TestAppendRemote(t *testing.T) {
	for _, a := range []*net.TCPAddr{
		{IP: net.ParseIP("127.0.0.1"), Port: 4321},
		{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 80},
		{IP: net.ParseIP("::1"), Port: 1},
		{IP: net.ParseIP("fe80::1"), Port: 65535, Zone: "eth0"},
	} {
		if got := string(appendRemote(nil, a)); got != a.String() {
			t.Errorf("%s: %q", a, got)
		}
	}
}

// TestAccessLogLine checks every field of a request's access log line:
// the decoded path, the raw query, the route, the body's bytes (a HEAD's
// too), the client's address, fresh, and the error's code and message.
func TestAccessLogLine(t *testing.T) {
	ts := startServer(t, testConfig(t))
	u := ts.newUser()
	ts.access.TakeAll()
	c, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, tc := range []struct {
		request string
		want    map[string]any
	}{
		{fmt.Sprintf("HEAD /v1/users/%d/p%%6fsts?limit=5&x=%%41 HTTP/1.1\r\nHost: o\r\nEdgecache-Fresh: 1\r\n\r\n", u.ID),
			map[string]any{"method": "HEAD", "path": fmt.Sprintf("/v1/users/%d/posts", u.ID), "query": "limit=5&x=%41",
				"route": "GET /v1/users/{id}/posts", "status": 200.0, "bytes": float64(len(`{"posts":[],"next":null}`)), "fresh": true}},
		{"GET /v1/posts/0 HTTP/1.1\r\nHost: o\r\n\r\n",
			map[string]any{"method": "GET", "path": "/v1/posts/0", "query": "", "route": "GET /v1/posts/{id}", "status": 400.0,
				"error_code": "invalid_id", "error": "id must be a positive integer without leading zeros, at most 9223372036854775807"}},
		{"GET /nowhere HTTP/1.1\r\nHost: o\r\n\r\n",
			map[string]any{"method": "GET", "path": "/nowhere", "route": "unmatched", "status": 404.0, "error_code": "not_found"}},
	} {
		if _, err := c.Write([]byte(tc.request)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(r, &http.Request{Method: strings.Fields(tc.request)[0]})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lines := ts.access.TakeAll()
		if len(lines) != 1 {
			t.Fatalf("%q: %d access log lines", tc.request, len(lines))
		}
		line := lines[0]
		tc.want["logger"], tc.want["msg"], tc.want["level"], tc.want["remote"] = "access", "request", "info", c.LocalAddr().String()
		for k, want := range tc.want {
			if line[k] != want {
				t.Errorf("%q: %s = %v, want %v", tc.request, k, line[k], want)
			}
		}
		if _, fresh := tc.want["fresh"]; !fresh && line["fresh"] != nil {
			t.Errorf("%q: fresh %v", tc.request, line["fresh"])
		}
		if d, ok := line["duration"].(float64); !ok || d <= 0 {
			t.Errorf("%q: duration %v", tc.request, line["duration"])
		}
	}
}
