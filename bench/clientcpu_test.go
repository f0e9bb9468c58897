package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// answerServerEnv makes the test binary serve answerServer instead of
// running tests (TestMain): the benchmark below runs it in a process of its
// own, so that the bench's getrusage counts the client alone.
const answerServerEnv = "BENCH_ANSWER_SERVER"

// BenchmarkClientCPU is the load generator's CPU per request on the 100:1
// mix, open loop at -rate 5000/s, against a trivial fasthttp server in
// another process that answers like the origin (1 KB posts, first pages of
// 20 posts, profiles, edits, creates) with an edgecache hit's headers. The
// figure is the bench's own user + system CPU per request, as every run
// reports it; ns/op is only the schedule's interval. -cpu 1 is the core
// bench run and bench sweep use by default (-procs 1).
//
//	go test -run '^$' -bench ClientCPU -benchtime 50000x -cpu 1 ./bench
func BenchmarkClientCPU(b *testing.B) {
	addr := startAnswerServer(b)
	seed := syntheticSeed(1000, 10000)
	cfg := DefaultRunConfig()
	cfg.Name, cfg.Targets = "clientcpu", []string{"http://" + addr}
	cfg.Rate, cfg.Duration, cfg.Requests = 5000, 0, int64(b.N)
	cfg.Connections = 128
	cfg.OutDir, cfg.SeedFile = "", ""
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	res, err := Run(context.Background(), cfg, seed, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	if res.Errors > 0 || res.Derived.StaleReads > 0 {
		b.Fatalf("%d errors, %d stale reads against the answer server", res.Errors, res.Derived.StaleReads)
	}
	b.ReportMetric(res.Client.MicrosPerRequest, "client-cpu-µs/req")
	b.ReportMetric(res.Client.SysSeconds*1e6/float64(res.Requests), "of-which-sys-µs/req")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(res.Requests), "allocs/req")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(res.Requests), "B/req")
}

// syntheticSeed is users and posts as bench seed makes them (post i belongs
// to user i mod users), without a database: the answer server invents the
// same ids.
func syntheticSeed(users, posts int) *Seed {
	s := &Seed{Tag: "t"}
	for i := range users {
		s.Users = append(s.Users, SeedUser{ID: int64(i + 1), Token: strconv.Itoa(i+1) + ".secret", PostCount: int64(posts / users)})
	}
	for i := range posts {
		s.Posts = append(s.Posts, SeedPost{ID: int64(i + 1), User: i % users, Version: 1})
	}
	return s
}

// startAnswerServer runs this test binary as the answer server and returns
// its address; it is killed when the benchmark ends.
func startAnswerServer(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), answerServerEnv+"=1000,10000")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("answer server: %v", err)
	}
	return strings.TrimSpace(addr)
}

// serveAnswers is the answer server's main: it prints its address, then
// serves until killed.
func serveAnswers(spec string) {
	users, posts, _ := strings.Cut(spec, ",")
	nu, _ := strconv.Atoi(users)
	np, _ := strconv.Atoi(posts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	a := newAnswerServer(nu, np)
	srv := &fasthttp.Server{Handler: a.serve, ReadTimeout: time.Minute}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// answerServer answers the origin API's requests with the right ids,
// versions, pages and counts, and nothing else: edits bump a version,
// creates add a post to its user's first page.
type answerServer struct {
	users int
	text  string // every post's 1 KB body text

	mu       sync.Mutex
	versions map[int64]int64   // post id → version
	owned    map[int64][]int64 // user id → its post ids, oldest first
	nextID   int64
}

func newAnswerServer(users, posts int) *answerServer {
	a := &answerServer{users: users, text: strings.Repeat("x", 1024),
		versions: make(map[int64]int64, posts), owned: make(map[int64][]int64, users), nextID: int64(posts) + 1}
	for i := range posts {
		id := int64(i + 1)
		a.versions[id] = 1
		u := int64(i%users + 1)
		a.owned[u] = append(a.owned[u], id)
	}
	return a
}

func (a *answerServer) serve(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Status", "edgecache; hit; ttl=59")
	ctx.SetContentType("application/json")
	parts := strings.Split(strings.TrimPrefix(string(ctx.Path()), "/v1/"), "/")
	id, _ := strconv.ParseInt(parts[1], 10, 64)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case parts[0] == "posts" && ctx.IsPut():
		a.versions[id]++
		a.writePost(ctx, id)
	case parts[0] == "posts":
		a.writePost(ctx, id)
	case len(parts) == 3 && ctx.IsPost():
		p := a.nextID
		a.nextID++
		a.versions[p] = 1
		a.owned[id] = append(a.owned[id], p)
		ctx.SetStatusCode(fasthttp.StatusCreated)
		a.writePost(ctx, p)
	case len(parts) == 3:
		limit, _ := strconv.Atoi(string(ctx.QueryArgs().Peek("limit")))
		owned := a.owned[id]
		ctx.WriteString(`{"posts":[`)
		for i := len(owned) - 1; i >= 0 && i >= len(owned)-limit; i-- {
			if i < len(owned)-1 {
				ctx.WriteString(",")
			}
			a.writePost(ctx, owned[i])
		}
		ctx.WriteString(`],"next":null}`)
	default:
		fmt.Fprintf(ctx, `{"id":%d,"name":"user %d","post_count":%d,"created_at":"2026-12-01T20:12:26Z"}`, id, id, len(a.owned[id]))
	}
}

func (a *answerServer) writePost(ctx *fasthttp.RequestCtx, id int64) {
	fmt.Fprintf(ctx, `{"id":%d,"user_id":%d,"body":"%s","version":%d,"created_at":"2026-12-01T20:12:26Z","updated_at":"2026-12-01T20:12:26Z"}`,
		id, (id-1)%int64(a.users)+1, a.text, a.versions[id])
}
