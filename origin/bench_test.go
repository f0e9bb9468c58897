package origin

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"edgecache/proxy/accesslog"
)

// startBenchServer is an origin on the test primary whose access log is
// written as in production but discarded.
func startBenchServer(b *testing.B) *testServer {
	b.Helper()
	cfg := testConfig(b)
	cfg.MaxConns = 32
	cfg.QueryTimeout = 10 * time.Second // on a loaded machine, measure slowness rather than fail
	log, _ := zap.NewDevelopment(zap.IncreaseLevel(zapcore.WarnLevel))
	s, err := start(cfg, log, accesslog.New(io.Discard), func() {})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Shutdown(b.Context()) })
	return &testServer{Server: s, t: b, base: "http://" + s.Addr(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// benchPosts creates n posts spread over a few users.
func benchPosts(ts *testServer, n int) ([]post, map[int64]string) {
	tokens := map[int64]string{}
	var users []createdUser
	for range 8 {
		u := ts.newUser()
		users = append(users, u)
		tokens[u.ID] = u.Token
	}
	var posts []post
	for i := range n {
		posts = append(posts, ts.newPost(users[i%len(users)], strings.Repeat("x", 1000)))
	}
	return posts, tokens
}

// benchRequests sends the request that request(i) makes for the i-th call,
// from many concurrent clients, until b.N, failing on any status but want.
func benchRequests(b *testing.B, ts *testServer, want int, request func(i uint64) *http.Request) {
	var next atomic.Uint64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := ts.client.Do(request(next.Add(1)))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("status %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkGetPost measures GET /v1/posts/{id} over HTTP against the real
// MariaDB (no cache in between), from many concurrent clients.
func BenchmarkGetPost(b *testing.B) {
	ts := startBenchServer(b)
	posts, _ := benchPosts(ts, 64)
	benchRequests(b, ts, http.StatusOK, func(i uint64) *http.Request {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/posts/%d", ts.base, posts[i%uint64(len(posts))].ID), nil)
		return req
	})
}

// BenchmarkPutPost measures PUT /v1/posts/{id} (1000-byte bodies, each a
// transaction that moves two versions) from many concurrent clients, spread
// over 64 posts of 8 users.
func BenchmarkPutPost(b *testing.B) {
	ts := startBenchServer(b)
	posts, tokens := benchPosts(ts, 64)
	body := jsonPost(strings.Repeat("y", 1000))
	benchRequests(b, ts, http.StatusOK, func(i uint64) *http.Request {
		p := posts[i%uint64(len(posts))]
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/posts/%d", ts.base, p.ID), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokens[p.UserID])
		return req
	})
}

// BenchmarkCreatePost measures POST /v1/users/{id}/posts (1000-byte bodies,
// each a transaction that inserts a post and moves three versions) from many
// concurrent clients, spread over 8 users.
func BenchmarkCreatePost(b *testing.B) {
	ts := startBenchServer(b)
	var users []createdUser
	for range 8 {
		users = append(users, ts.newUser())
	}
	body := jsonPost(strings.Repeat("z", 1000))
	benchRequests(b, ts, http.StatusCreated, func(i uint64) *http.Request {
		u := users[i%uint64(len(users))]
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/users/%d/posts", ts.base, u.ID), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+u.Token)
		return req
	})
}
