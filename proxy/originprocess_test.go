package proxy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// originProcessEnv makes this test binary, run again as a child, serve as
// an origin (TestOriginProcess) instead of running tests: a real process
// that a test can SIGSTOP, SIGCONT and SIGKILL like an origin server.
const originProcessEnv = "EDGECACHE_TEST_ORIGIN_PROCESS"

const originProcessAddrPrefix = "origin process listening on "

// TestOriginProcess is the child's origin: GET answers a cacheable body,
// any other method a no-store JSON answer, counted; GET /count reports that
// count; /healthz answers 200. A GET's query may ask for the answer's
// Edgecache-Groups (groups=) and a body of that many bytes (bytes=), as
// BenchmarkMiss does.
func TestOriginProcess(t *testing.T) {
	if os.Getenv(originProcessEnv) == "" {
		t.Skip("runs only as the child of startOriginProcess")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(originProcessAddrPrefix + ln.Addr().String())
	var writes atomic.Int64
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch {
		case string(ctx.Path()) == "/healthz":
			ctx.SetBodyString("ok")
		case string(ctx.Path()) == "/count":
			ctx.SetBodyString(strconv.FormatInt(writes.Load(), 10))
		case ctx.IsGet() || ctx.IsHead():
			ctx.Response.Header.Set("Cache-Control", "public, s-maxage=60")
			if g := ctx.QueryArgs().Peek("groups"); len(g) > 0 {
				ctx.Response.Header.SetBytesV("Edgecache-Groups", g)
			}
			if n, err := strconv.Atoi(string(ctx.QueryArgs().Peek("bytes"))); err == nil {
				ctx.SetBodyString(strings.Repeat("x", n))
				return
			}
			ctx.SetBodyString("from " + ln.Addr().String())
		default:
			writes.Add(1)
			ctx.Response.Header.Set("Cache-Control", "no-store")
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"ok":true}`)
		}
	}}
	srv.Serve(ln)
}

// originProcess is a running TestOriginProcess child.
type originProcess struct {
	addr string
	cmd  *exec.Cmd
}

func startOriginProcess(t testing.TB) *originProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOriginProcess$")
	cmd.Env = append(os.Environ(), originProcessEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o := &originProcess{cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), originProcessAddrPrefix); ok {
			o.addr = addr
			break
		}
	}
	if o.addr == "" {
		t.Fatalf("origin process gave no address: %v", sc.Err())
	}
	return o
}

func (o *originProcess) url() string { return "http://" + o.addr }

func (o *originProcess) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := o.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

// writes asks the process how many writes it has received.
func (o *originProcess) writes(t *testing.T) int64 {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(o.url() + "/count")
	if err := testClient.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(string(resp.Body()), 10, 64)
	if err != nil {
		t.Fatalf("/count: %q", resp.Body())
	}
	return n
}
