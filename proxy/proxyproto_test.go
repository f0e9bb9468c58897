package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// send writes b (a PROXY header, a request, or both) on a connection to
// the proxy from local (nil: any loopback address) and returns the
// connection.
func send(t *testing.T, p *Proxy, local net.Addr, b string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: local}
	c, err := d.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a backstop: the test fails, never hangs
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, b); err != nil {
		t.Fatal(err)
	}
	return c
}

// readAnswer reads one response from c.
func readAnswer(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(body)
}

// proxyV2 is a version 2 PROXY header for TCP over IPv4 from src.
func proxyV2(src string) string {
	a := net.ParseIP(src).To4()
	return "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + string(a) + "\x0a\x00\x00\x01" + "\x04\xd2\x01\xbb"
}

func getRequest(path string, fields ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: edge.test\r\n" + strings.Join(fields, "") + "Connection: close\r\n\r\n"
}

// Behind a load balancer that sends PROXY headers (127.0.0.1 here), the
// access log and the per-client budgets see the client the header names;
// X-Forwarded-For counts only when that client is itself trusted. A peer
// outside the trusted networks that sends a header gets 400 (its bytes are
// HTTP); a trusted peer without one has its connection closed unanswered
// and logged; one that stalls in its header holds up nobody else, and is
// closed without an answer when PROXY_HEADER_TIMEOUT has passed.
func TestProxyProtocolNamesTheClient(t *testing.T) {
	cfg := testConfig(realStack(t))
	cfg.PublicPaths = []string{"/v1/"}
	cfg.TrustedProxies = []string{"127.0.0.1/32", "10.0.0.0/8"}
	cfg.ProxyProtocol = true
	cfg.AccessLog = filepath.Join(t.TempDir(), "access.log")
	cfg.ClientMissRate, cfg.ClientMissBurst = 0.001, 1 // a token every 1,000 s: none comes back during the test
	cfg.HeaderTimeout = time.Second                    // the stalled header's end; nothing waits for it but that subtest
	core, logs := observer.New(zap.InfoLevel)
	p, err := Start(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p.Shutdown(ctx)
		}
	}
	t.Cleanup(stop)
	missing := time.Now().UnixNano() // post ids nobody created: every read is a miss
	path := func(i int) string { return fmt.Sprintf("/v1/posts/%d", missing+int64(i)) }
	untrusted := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}

	t.Run("v1 and v2 name the client; budgets follow it", func(t *testing.T) {
		if code, body := readAnswer(t, send(t, p, nil, "PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n"+getRequest(path(1)))); code != 404 {
			t.Fatalf("v1: %d %s, want the origin's 404", code, body)
		}
		if code, _ := readAnswer(t, send(t, p, nil, proxyV2("203.0.113.7")+getRequest(path(2)))); code != 429 {
			t.Fatalf("v2 from the same client, past its budget of 1: %d, want 429", code)
		}
		if code, body := readAnswer(t, send(t, p, nil, proxyV2("198.51.100.2")+getRequest(path(3)))); code != 404 {
			t.Fatalf("v2 from another client: %d %s, want the origin's 404", code, body)
		}
	})

	t.Run("X-Forwarded-For counts only behind a trusted client", func(t *testing.T) {
		xff := "X-Forwarded-For: 192.0.2.66\r\n"
		if code, _ := readAnswer(t, send(t, p, nil, "PROXY TCP4 10.1.2.3 10.0.0.1 1000 443\r\n"+getRequest(path(4), xff))); code != 404 {
			t.Fatalf("behind trusted 10.1.2.3: %d", code)
		}
		if code, _ := readAnswer(t, send(t, p, nil, "PROXY TCP4 203.0.113.9 10.0.0.1 1000 443\r\n"+getRequest(path(5), xff))); code != 404 {
			t.Fatalf("from 203.0.113.9: %d", code)
		}
	})

	t.Run("untrusted peer sending a header gets 400", func(t *testing.T) {
		for _, header := range []string{"PROXY TCP4 203.0.113.8 10.0.0.1 56324 443\r\n", proxyV2("203.0.113.8")} {
			if code, body := readAnswer(t, send(t, p, untrusted, header+getRequest(path(6)))); code != 400 || !strings.Contains(body, `"bad_request"`) {
				t.Errorf("%q: %d %s, want 400 bad_request", header[:8], code, body)
			}
		}
	})

	t.Run("trusted peer without a header is closed unanswered", func(t *testing.T) {
		c := send(t, p, nil, getRequest(path(7)))
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Errorf("read %q, %v; want the connection closed without an answer", b, err)
		}
		want := c.LocalAddr().String()
		if n := logs.FilterMessage("PROXY protocol header refused, connection closed").FilterField(zap.String("peer", want)).Len(); n != 1 {
			t.Errorf("%d log lines naming peer %s, want 1", n, want)
		}
	})

	t.Run("a stalled header holds up nobody else", func(t *testing.T) {
		stalled := send(t, p, nil, "PROXY TCP4 203.0.")
		stalledRead := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(stalled)
			stalledRead <- b
		}()
		if code, _ := readAnswer(t, send(t, p, nil, proxyV2("198.51.100.3")+getRequest(path(8)))); code != 404 {
			t.Fatalf("another connection: %d", code)
		}
		select {
		case b := <-stalledRead:
			t.Fatalf("the stalled connection ended (%q) before the other was answered", b)
		default:
		}
		// PROXY_HEADER_TIMEOUT (the deadline sweep enforces it) ends it,
		// without the 408 a stalled HTTP head gets: the peer is a load
		// balancer that broke its protocol, not a slow client.
		if b := <-stalledRead; len(b) != 0 {
			t.Errorf("the stalled connection got %q, want it closed without an answer", b)
		}
	})

	stop() // flushes the access log
	b, err := os.ReadFile(cfg.AccessLog)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var line struct{ URI, Client string }
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		clients[line.URI] = line.Client
	}
	for i, want := range map[int]string{1: "203.0.113.7", 2: "203.0.113.7", 3: "198.51.100.2", 4: "192.0.2.66", 5: "203.0.113.9", 8: "198.51.100.3"} {
		if got := clients[path(i)]; got != want {
			t.Errorf("access log client of %s: %q, want %q", path(i), got, want)
		}
	}
}
