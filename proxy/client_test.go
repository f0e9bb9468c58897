package proxy

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The client is the rightmost X-Forwarded-For address that is not a
// trusted proxy, when the peer is one; else the peer.
func TestClientAddr(t *testing.T) {
	trusted, err := parseTrustedProxies([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.7", []string{"203.0.113.1"}, "192.0.2.7"},                // untrusted peer: its XFF is the client's own word
		{"10.0.0.2", nil, "10.0.0.2"},                                      // a trusted peer without XFF
		{"10.0.0.2", []string{"203.0.113.1"}, "203.0.113.1"},               // one load balancer
		{"10.0.0.2", []string{"198.51.100.9, 203.0.113.1"}, "203.0.113.1"}, // a forged left part is never read
		{"10.0.0.2", []string{"198.51.100.9, 203.0.113.1, 10.1.1.1"}, "203.0.113.1"},
		{"10.0.0.2", []string{"198.51.100.9", "203.0.113.1,10.1.1.1"}, "203.0.113.1"}, // lines in order
		{"10.0.0.2", []string{"203.0.113.1", " 10.1.1.1 ,"}, "203.0.113.1"},
		{"10.0.0.2", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"}, // all trusted: the leftmost
		{"10.0.0.2", []string{"203.0.113.1, unknown, 10.1.1.1"}, "10.1.1.1"},
		{"10.0.0.2", []string{"2001:db8::5, 2001:db9::1"}, "2001:db9::1"},
		{"10.0.0.2", []string{"::ffff:203.0.113.1"}, "203.0.113.1"},
	}
	for _, c := range cases {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		for _, v := range c.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(c.peer), Port: 1234}, nil)
		if got := trusted.clientAddr(&ctx).String(); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	var none trustedProxies
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.Set("X-Forwarded-For", "203.0.113.1")
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("10.0.0.2")}, nil)
	if got := none.clientAddr(&ctx).String(); got != "10.0.0.2" {
		t.Errorf("nobody trusted: client %s, want the peer", got)
	}
}

// Behind a trusted load balancer, the access log names the client the
// balancer reports, and the origin gets the whole chain with the peer
// appended; from an untrusted peer, neither believes its X-Forwarded-For.
func TestClientFromTrustedProxies(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	o := newScripted(t)
	o.handle("/client/xff", func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		seen = append(seen, string(ctx.Request.Header.Peek("X-Forwarded-For")))
		mu.Unlock()
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBodyString("ok")
	})
	for _, tc := range []struct {
		trusted          []string
		wantLog, wantXFF string
	}{
		{[]string{"127.0.0.0/8"}, "203.0.113.1", "198.51.100.9, 203.0.113.1, 127.0.0.5, 127.0.0.1"},
		{nil, "127.0.0.1", "127.0.0.1"},
	} {
		cfg := testConfig(o.url())
		cfg.TrustedProxies = tc.trusted
		cfg.AccessLog = filepath.Join(t.TempDir(), "access.log")
		p := startProxy(t, cfg)
		mu.Lock()
		seen = nil
		mu.Unlock()
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("http://" + p.Addr() + "/client/xff")
		req.Header.Add("X-Forwarded-For", "198.51.100.9")
		req.Header.Add("X-Forwarded-For", "203.0.113.1, 127.0.0.5")
		var resp fasthttp.Response
		if err := testClient.DoTimeout(req, &resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("%v %d", err, resp.StatusCode())
		}
		fasthttp.ReleaseRequest(req)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p.Shutdown(ctx)
		cancel()
		b, err := os.ReadFile(cfg.AccessLog)
		if err != nil {
			t.Fatal(err)
		}
		var line struct{ Client string }
		if err := json.Unmarshal([]byte(strings.TrimSpace(string(b))), &line); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if line.Client != tc.wantLog {
			t.Errorf("trusted %v: access log client %q, want %q", tc.trusted, line.Client, tc.wantLog)
		}
		mu.Lock()
		if len(seen) != 1 || seen[0] != tc.wantXFF {
			t.Errorf("trusted %v: origin got X-Forwarded-For %q, want %q", tc.trusted, seen, tc.wantXFF)
		}
		mu.Unlock()
	}
}

// The client's address behind two trusted hops: no allocation.
func BenchmarkClientAddr(b *testing.B) {
	trusted, _ := parseTrustedProxies([]string{"10.0.0.0/8"})
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.Set("X-Forwarded-For", "198.51.100.9, 203.0.113.1, 10.1.1.1")
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("10.0.0.2")}, nil)
	b.ReportAllocs()
	for b.Loop() {
		if !trusted.clientAddr(&ctx).IsValid() {
			b.Fatal("no address")
		}
	}
}
