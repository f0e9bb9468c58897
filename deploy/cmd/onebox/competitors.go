package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"edgecache/deploy/localstack"
)

// competitor is another shared cache in front of the origin, run by make
// bench for comparison: nginx's proxy_cache and Varnish, each with its
// stock caching rules (they honour the origin's s-maxage and pass requests
// with Authorization). They cannot see a write made through another
// instance, or through themselves: the read-after-write check counts what
// they serve stale.
type competitor struct {
	name string
	addr string // host:port
	proc *localstack.Process
	dir  string
}

func (c *competitor) stop() {
	c.proc.Stop()
	os.RemoveAll(c.dir)
}

// startCompetitors starts nginx and varnishd, those on PATH (deploy/install-deps.sh
// bench installs them), in front of origin. Each that is missing or does
// not start is left out with a note on w: the benchmark runs without it.
func startCompetitors(ctx context.Context, origin string, w io.Writer) []*competitor {
	var out []*competitor
	for _, start := range []func(string, string) (*competitor, error){startNginx, startVarnish} {
		dir, err := os.MkdirTemp("", "edgecache-bench-")
		if err == nil {
			err = os.Chmod(dir, 0o755) // nginx's and Varnish's workers run as other users
		}
		var c *competitor
		if err == nil {
			c, err = start(dir, origin)
		}
		if err == nil {
			err = waitHTTP(ctx, c)
		}
		if err != nil {
			fmt.Fprintf(w, "benchmark: left out of the comparison: %v\n", err)
			if c != nil {
				c.stop()
			} else {
				os.RemoveAll(dir)
			}
			continue
		}
		out = append(out, c)
	}
	return out
}

func startNginx(dir, origin string) (*competitor, error) {
	bin, err := lookPath("nginx")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path %[1]s/cache keys_zone=edge:16m;
  upstream origin { server %[2]s; keepalive 64; }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
}
`, dir, origin, addr)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := localstack.StartProcess(filepath.Join(dir, "nginx.log"), nil, bin, "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	if err != nil {
		return nil, err
	}
	return &competitor{name: "nginx", addr: addr, proc: p, dir: dir}, nil
}

func startVarnish(dir, origin string) (*competitor, error) {
	bin, err := lookPath("varnishd")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(origin)
	// The stock rules, and an X-Cache header so that the bench can count
	// hits as it does from nginx's X-Cache-Status and edgecache's
	// Cache-Status.
	vcl := fmt.Sprintf(`vcl 4.1;
backend origin { .host = %q; .port = %q; }
sub vcl_deliver {
  if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
`, host, port)
	if err := os.WriteFile(filepath.Join(dir, "default.vcl"), []byte(vcl), 0o644); err != nil {
		return nil, err
	}
	p, err := localstack.StartProcess(filepath.Join(dir, "varnish.log"), nil, bin,
		"-F", "-n", filepath.Join(dir, "varnish"), "-a", addr, "-f", filepath.Join(dir, "default.vcl"), "-s", "malloc,256m")
	if err != nil {
		return nil, err
	}
	return &competitor{name: "varnish", addr: addr, proc: p, dir: dir}, nil
}

// lookPath finds a server binary on PATH or in /usr/sbin (not on every
// user's PATH).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if p := filepath.Join("/usr/sbin", name); fileExists(p) {
		return p, nil
	}
	return "", fmt.Errorf("%s is not installed (deploy/install-deps.sh bench installs it)", name)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freeAddr is a loopback host:port the kernel says is free.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP waits until c answers HTTP at all (any status).
func waitHTTP(ctx context.Context, c *competitor) error {
	return c.proc.WaitReady(ctx, 20*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get("http://" + c.addr + "/v1/users/1")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}
