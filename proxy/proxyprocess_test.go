package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
)

// proxyProcessEnv makes this test binary, run again as a child, serve as
// a proxy configured by its PROXY_* environment (TestProxyProcess): a real
// process that a test can SIGSTOP and SIGCONT.
const proxyProcessEnv = "EDGECACHE_TEST_PROXY_PROCESS"

const proxyProcessPrefix = "proxy process listening on "

// TestProxyProcess is the child's proxy.
func TestProxyProcess(t *testing.T) {
	if os.Getenv(proxyProcessEnv) == "" {
		t.Skip("runs only as the child of startProxyProcess")
	}
	cfg, err := envconfig.Load[Config]()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(proxyProcessPrefix + p.Addr() + " " + p.AdminAddr())
	select {}
}

// proxyProcess is a running TestProxyProcess child.
type proxyProcess struct {
	*localstack.Process
	addr, admin string
}

func startProxyProcess(t *testing.T, env ...string) *proxyProcess {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "proxy.log")
	env = append([]string{proxyProcessEnv + "=1", "PROXY_LISTEN=127.0.0.1:0", "PROXY_ADMIN_LISTEN=127.0.0.1:0",
		"PROXY_ACCESS_LOG=off", "PROXY_PUBLIC_PATHS=/", "PROXY_DRAIN_DELAY=0s", "PROXY_MEMCACHED_TIMEOUT=3s"}, env...)
	proc, err := localstack.StartProcess(logPath, env, os.Args[0], "-test.run=^TestProxyProcess$")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Resume(); proc.Stop() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), proxyProcessPrefix); ok {
				f := strings.Fields(rest)
				return &proxyProcess{Process: proc, addr: f[0], admin: f[1]}
			}
		}
		select {
		case <-proc.Exited():
			t.Fatalf("proxy process exited: %s", b)
		case <-time.After(10 * time.Millisecond): // the child writes its address once it listens
		}
	}
	t.Fatal("proxy process gave no address")
	return nil
}

// metric reads one sample of the child's /metrics (0 if absent).
func (pp *proxyProcess) metric(t *testing.T, name string) float64 {
	t.Helper()
	r := getAt(t, pp.admin, "/metrics")
	for _, line := range strings.Split(string(r.Body()), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func getAt(t *testing.T, addr, path string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetHost("edge.test")
	req.UseHostHeader = true
	resp := new(fasthttp.Response)
	if err := testClient.DoTimeout(req, resp, 30*time.Second); err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	return resp
}

// Issue 9: a proxy in a process of its own, serving an item from L1 under
// its lease, is stopped (SIGSTOP) longer than its lease while a write goes
// through another proxy. The write waits for it (at most about a lease
// duration), and once resumed it serves nothing older than the write. The
// notification the write sent it is lost on the way (its peer address is a
// relay that is paused, then killed, with the message in it), so only the
// lease's expiry and the re-check after it protect the readers: a stopped
// process would otherwise read the late message first.
func TestPausedProxyServesNothingStaleAfterResume(t *testing.T) {
	o := newScripted(t)
	var v atomic.Int64
	v.Store(1)
	o.handle("/lease/paused", versionedItem("item", &v, "pausedgroup"))
	node := leaseNode(t)
	cfg := leaseConfig(node, o.url())
	writer := startProxy(t, cfg)
	rl, err := localstack.StartRelay("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Kill()
	child := startProxyProcess(t, "PROXY_MEMCACHED="+node.Addr, "PROXY_ORIGINS="+o.url(), "PROXY_PEER_SECRET="+testPeerSecret,
		"PROXY_LEASE_DURATION="+cfg.LeaseDuration.String(), "PROXY_PEER_TIMEOUT="+cfg.PeerTimeout.String(),
		"PROXY_PEER_ADVERTISE="+rl.Addr())
	rl.Retarget(child.admin)
	const freeHits = `edgecache_proxy_l1_hits_by_check_total{check="lease"}`
	deadline := time.Now().Add(30 * time.Second)
	for child.metric(t, freeHits) == 0 {
		if r := getAt(t, child.addr, "/lease/paused"); string(r.Body()) != "item v1" {
			t.Fatalf("warm-up: %q", r.Body())
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never served from L1 under its lease")
		}
	}

	rl.Pause()
	if err := child.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w := do(t, writer, "PUT", "/lease/paused", nil, "{}")
	took := time.Since(start)
	if w.StatusCode() != 200 || len(w.Header.Peek(hdrInvalidation)) > 0 {
		t.Fatalf("PUT: %d %q", w.StatusCode(), w.Header.Peek(hdrInvalidation))
	}
	t.Logf("write with the holder stopped took %s (lease %s, peer timeout %s)", took, cfg.LeaseDuration, cfg.PeerTimeout)
	rl.Kill() // the notification in it is lost
	if err := child.Resume(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if r := getAt(t, child.addr, "/lease/paused"); string(r.Body()) != "item v2" {
			t.Fatalf("read %d after resuming: STALE %q (Cache-Status %q), want item v2", i, r.Body(), r.Header.Peek("Cache-Status"))
		}
	}
}
