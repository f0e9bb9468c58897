package proxyproto

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"edgecache/deploy/localstack"
)

// freeAddr is a loopback address with a port nobody listens on now, for
// HAProxy's configuration, which takes no port 0.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The headers a real HAProxy sends (mode tcp, send-proxy and
// send-proxy-v2) name the client exactly, address and port, and what the
// client sent follows intact.
func TestHeadersFromHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		bin = "/usr/sbin/haproxy"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("haproxy not found: install the Debian package haproxy (make deps)")
		}
	}
	l, _ := listen(t, loopback, backstop)
	v1, v2, stats := freeAddr(t), freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen v1
    bind %s
    server backend %s send-proxy
listen v2
    bind %s
    server backend %s send-proxy-v2
listen stats
    mode http
    bind %s
    stats enable
    stats uri /stats
`, v1, l.Addr(), v2, l.Addr(), stats)
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ha, err := localstack.StartProcess(filepath.Join(dir, "haproxy.log"), nil, bin, "-f", cfgPath, "-db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ha.Stop)
	// HAProxy binds every listener before it serves any: the stats page
	// answering means v1 and v2 are listening.
	err = ha.WaitReady(context.Background(), backstop, 20*time.Millisecond, func() error {
		resp, err := http.Get("http://" + stats + "/stats")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The client dials from its own loopback address, so that the header's
	// client differs from the peer (HAProxy, from 127.0.0.1).
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9)}}
	for _, front := range []struct{ name, addr string }{{"send-proxy", v1}, {"send-proxy-v2", v2}} {
		t.Run(front.name, func(t *testing.T) {
			client, err := dialer.Dial("tcp", front.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if _, err := io.WriteString(client, "hello"); err != nil {
				t.Fatal(err)
			}
			client.(*net.TCPConn).CloseWrite()
			server := accept(t, l)
			if got, want := server.RemoteAddr().String(), client.LocalAddr().String(); got != want {
				t.Errorf("RemoteAddr %s, want the client %s", got, want)
			}
			if got, err := io.ReadAll(server); err != nil || string(got) != "hello" {
				t.Errorf("read %q, %v; want hello", got, err)
			}
		})
	}
}
