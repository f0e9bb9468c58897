package proxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"edgecache/proxy/store/memstore"
)

// The client timeouts fire through the client listener's sweep (package
// deadline): a request header that stalls gets the JSON 408, an idle
// keep-alive connection is closed.
func TestClientTimeoutsFire(t *testing.T) {
	o := newScripted(t)
	cfg := memConfig(o.url())
	cfg.HeaderTimeout, cfg.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond
	cfg.ReadTimeout = time.Hour // the body's: the head alone must time out
	p := startProxyOver(t, cfg, memstore.New(1))

	stalled := dial(t, p)
	io.WriteString(stalled, "GET /a HTTP/1.1\r\nHost: edge.test\r\n") // no end of header
	resp, err := io.ReadAll(stalled)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 408 ") || !strings.Contains(string(resp), `"code":"request_timeout"`) {
		t.Fatalf("stalled request header: %q, want the JSON 408", resp)
	}

	idle := dial(t, p)
	io.WriteString(idle, "GET /nothing HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	br := bufio.NewReader(idle)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 ") {
		t.Fatalf("first answer: %q %v", line, err)
	}
	if _, err := io.ReadAll(br); err != nil { // the rest of the answer, then EOF: the proxy closed it
		t.Fatalf("idle connection: %v, want it closed by the proxy", err)
	}
}

// dial opens a connection to p's client listener that gives up after 10 s
// (a timeout that never fires fails the test instead of hanging it).
func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}
