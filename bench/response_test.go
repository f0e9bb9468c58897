package bench

import (
	"bytes"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	for _, c := range []struct {
		name, head string
		want       responseHead // cache headers compared as strings below
		cs, xcs    string
	}{
		{"proxy hit", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Status: edgecache; hit; ttl=59\r\nContent-Length: 12\r\n\r\n",
			responseHead{status: 200, contentLength: 12}, "edgecache; hit; ttl=59", ""},
		{"names in any case, spaces around values", "HTTP/1.1 201 Created\r\ncontent-length:  7 \r\nx-cache-status:MISS\r\n\r\n",
			responseHead{status: 201, contentLength: 7}, "", "MISS"},
		{"chunked overrides a length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
			responseHead{status: 200, contentLength: -1, chunked: true}, "", ""},
		{"close", "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n",
			responseHead{status: 503, contentLength: -1, close: true}, "", ""},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
			responseHead{status: 200, contentLength: 0, close: true}, "", ""},
		{"HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
			responseHead{status: 200, contentLength: 0}, "", ""},
		{"no reason phrase", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
			responseHead{status: 404, contentLength: 0}, "", ""},
	} {
		b := []byte(c.head + "body after the head")
		h, n, err := parseHead(b)
		if err != nil || n != len(c.head) {
			t.Errorf("%s: parseHead = n %d, %v; want n %d, no error", c.name, n, err, len(c.head))
			continue
		}
		if string(h.cacheStatus) != c.cs || string(h.xCacheStatus) != c.xcs {
			t.Errorf("%s: Cache-Status %q, X-Cache-Status %q; want %q, %q", c.name, h.cacheStatus, h.xCacheStatus, c.cs, c.xcs)
		}
		if h.status != c.want.status || h.contentLength != c.want.contentLength || h.chunked != c.want.chunked || h.close != c.want.close {
			t.Errorf("%s: %+v, want %+v", c.name, h, c.want)
		}
		// Every prefix of the head is incomplete, not an error.
		for i := range len(c.head) {
			if _, n, err := parseHead(b[:i]); n != 0 || err != nil {
				t.Fatalf("%s: parseHead of the first %d bytes = n %d, %v; want 0, nil", c.name, i, n, err)
			}
		}
	}
	for _, bad := range []string{
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded: line\r\n\r\n",
		"garbage\r\n\r\n",
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Long: "+strings.Repeat("a", 1000)+"\r\n", 70),
	} {
		if _, n, err := parseHead([]byte(bad)); err == nil {
			t.Errorf("parseHead(%.40q) = n %d, no error; want an error", bad, n)
		}
	}
}

func TestDechunk(t *testing.T) {
	const enc = "5\r\nhello\r\n6;ext=1\r\n world\r\nA \r\n, and more\r\n0\r\nX-Trailer: 1\r\n\r\n"
	b := []byte(enc + "next")
	body, n, err := dechunk(b)
	if err != nil || n != len(enc) || string(body) != "hello world, and more" {
		t.Fatalf("dechunk = %q, n %d, %v; want %q, n %d", body, n, err, "hello world, and more", len(enc))
	}
	// Every prefix is incomplete, and left as it was.
	for i := range len(enc) {
		p := []byte(enc[:i])
		if body, n, err := dechunk(p); n != 0 || err != nil || body != nil || string(p) != enc[:i] {
			t.Fatalf("dechunk of the first %d bytes = %q, n %d, %v, left %q; want incomplete and untouched", i, body, n, err, p)
		}
	}
	for _, bad := range []string{
		"x\r\nhello\r\n0\r\n\r\n",
		"5\r\nhelloXX0\r\n\r\n",
		"-5\r\nhello\r\n0\r\n\r\n",
		"123456789\r\n",
		"\r\n",
		strings.Repeat("1", 2000),
	} {
		if _, n, err := dechunk([]byte(bad)); err == nil {
			t.Errorf("dechunk(%.40q) = n %d, no error; want an error", bad, n)
		}
	}
}

// FuzzDechunk checks dechunk against net/http's chunked reader: what it
// decodes whole, net/http decodes the same; it never panics, and never
// says a body is whole before its last byte.
func FuzzDechunk(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"))
	f.Add([]byte("0\r\n\r\n"))
	f.Add([]byte("1\r\nx\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		body, n, err := dechunk(b)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) {
			t.Fatalf("n %d beyond the %d bytes given", n, len(b))
		}
		want, werr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(orig[:n])))
		if werr == nil && !bytes.Equal(body, want) {
			t.Fatalf("dechunk(%q) = %q; net/http decodes %q", orig, body, want)
		}
		if _, m, err := dechunk(bytes.Clone(orig[:n-1])); m != 0 || err != nil {
			t.Fatalf("dechunk of all but the last byte of %q = n %d, %v; want incomplete", orig[:n], m, err)
		}
	})
}

// FuzzParseHead: no panic, no length past the input, and a head that
// parses has a status code and ends its header.
func FuzzParseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nCache-Status: edgecache; hit\r\nContent-Length: 12\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 304 Not Modified\r\nConnection: keep-alive, close\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseHead(b)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) || !bytes.HasSuffix(b[:n], []byte("\r\n\r\n")) {
			t.Fatalf("head length %d of %q", n, b)
		}
		if h.status < 0 || h.status > 999 || h.contentLength > maxBodyBytes || (h.chunked && h.contentLength != -1) {
			t.Fatalf("parseHead(%q) = %+v", b, h)
		}
	})
}
