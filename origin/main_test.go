package origin

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/proxy/accesslog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

// The package's tests share one real MariaDB primary (ServerID 1) and one
// real replica (ServerID 2) replicating from it. Each test creates its own
// users, so tests do not see each other's rows.
var (
	primary *localstack.MariaDB
	replica *localstack.MariaDB
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if localstack.FuzzWorker() {
		return m.Run()
	}
	ctx := context.Background()
	var err error
	if primary, err = localstack.StartMariaDB(ctx, localstack.MariaDBOptions{ServerID: 1}); err != nil {
		fmt.Fprintln(os.Stderr, "start primary:", err)
		return 1
	}
	defer primary.Stop()
	if replica, err = localstack.StartMariaDB(ctx, localstack.MariaDBOptions{ServerID: 2}); err != nil {
		fmt.Fprintln(os.Stderr, "start replica:", err)
		return 1
	}
	defer replica.Stop()
	if err := replica.ReplicateFrom(ctx, primary); err != nil {
		fmt.Fprintln(os.Stderr, "replicate:", err)
		return 1
	}
	return m.Run()
}

// testConfig is the environment's defaults pointed at the test primary,
// with no drain delay and a query timeout long enough for a machine shared
// with other test runs.
func testConfig(t testing.TB) Config {
	t.Helper()
	cfg, err := envconfig.Load[Config]()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.MySQLDSN = primary.DSN("edgecache")
	cfg.DrainDelay = 0
	cfg.MaxConns = 16
	cfg.QueryTimeout = 15 * time.Second
	return cfg
}

// testServer is an origin under test, its access log, and a client for it.
type testServer struct {
	*Server
	t      testing.TB
	base   string
	access *accessLines
	client *http.Client
}

// accessLines records an access log's lines, decoded.
type accessLines struct {
	t     testing.TB
	mu    sync.Mutex
	lines []map[string]any
}

func (a *accessLines) Write(line []byte) (int, error) {
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		a.t.Errorf("access log line %q: %v", line, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines = append(a.lines, fields)
	return len(line), nil
}

// TakeAll returns the lines written since the last call.
func (a *accessLines) TakeAll() []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	lines := a.lines
	a.lines = nil
	return lines
}

// startServer starts an origin with cfg and stops it when the test ends.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	lines := &accessLines{t: t}
	log := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zapcore.WarnLevel))
	}
	s, err := start(cfg, log, accesslog.New(lines), func() {})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, t: t, base: "http://" + s.Addr(), access: lines,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second,
			// The origin never redirects: a test sees a redirect rather than
			// where it leads.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error("shutdown:", err)
		}
	})
	return ts
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; headers are name, value pairs (an empty value removes
// the header). A body gets Content-Type application/json unless headers say
// otherwise.
func (ts *testServer) do(method, path, body string, headers ...string) reply {
	ts.t.Helper()
	if body != "" {
		headers = append([]string{"Content-Type", "application/json"}, headers...)
	}
	return ts.doRaw(method, path, body, headers...)
}

// doRaw sends a request with exactly the given headers.
func (ts *testServer) doRaw(method, path, body string, headers ...string) reply {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// decode unmarshals the reply body into v, failing the test otherwise.
func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// errorCode returns the code of a JSON error body, or "" if it is not one.
func (r reply) errorCode() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(r.body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	return e.Error.Code
}

// expect fails the test unless the reply has the status.
func (r reply) expect(t testing.TB, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

type createdUser struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Token     string    `json:"token"`
}

var userSeq = time.Now().UnixNano()

// newUser creates a user with a unique email.
func (ts *testServer) newUser() createdUser {
	ts.t.Helper()
	userSeq++
	var u createdUser
	ts.do("POST", "/v1/users", fmt.Sprintf(`{"name":"user %d","email":"u%d@example.com"}`, userSeq, userSeq)).
		expect(ts.t, http.StatusCreated).decode(ts.t, &u)
	return u
}

// newPost creates a post by u.
func (ts *testServer) newPost(u createdUser, body string) post {
	ts.t.Helper()
	var p post
	ts.do("POST", fmt.Sprintf("/v1/users/%d/posts", u.ID), jsonPost(body), "Authorization", "Bearer "+u.Token).
		expect(ts.t, http.StatusCreated).decode(ts.t, &p)
	return p
}

func jsonPost(body string) string {
	b, _ := json.Marshal(map[string]string{"body": body})
	return string(b)
}

// openDB opens the test primary's edgecache database for direct checks.
func openDB(t testing.TB, m *localstack.MariaDB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", m.DSN("edgecache"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rowVersions reads a user's post_count, version and posts_version.
func rowVersions(t testing.TB, db *sql.DB, userID int64) (postCount, version, postsVersion int64) {
	t.Helper()
	err := db.QueryRow("SELECT post_count, version, posts_version FROM users WHERE id = ?", userID).
		Scan(&postCount, &version, &postsVersion)
	if err != nil {
		t.Fatal(err)
	}
	return
}

// dbState fingerprints every row of users and posts, to prove that a
// refused request wrote nothing. Tests in this package run one at a time.
func dbState(t testing.TB, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("CHECKSUM TABLE users, posts")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var state strings.Builder
	for rows.Next() {
		var table string
		var sum sql.NullInt64
		if err := rows.Scan(&table, &sum); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&state, "%s=%d ", table, sum.Int64)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return state.String()
}
