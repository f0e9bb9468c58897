package origin

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"edgecache/deploy/localstack"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
)

// waitFor polls cond until it holds, failing the test after 30 s. It is for
// conditions in another process (MariaDB, a listener) that offer no signal.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownDrains holds a row lock so that a PUT is in flight, starts
// Shutdown, and checks that /readyz fails during the drain delay, that the
// listener then closes, and that the in-flight PUT still completes.
func TestShutdownDrains(t *testing.T) {
	cfg := testConfig(t)
	cfg.DrainDelay = 2 * time.Second
	// The PUT waits for the test's lock, not for a timeout.
	cfg.QueryTimeout = time.Minute
	dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	dsn.ReadTimeout = time.Minute
	cfg.MySQLDSN = dsn.FormatDSN()
	ts := startServer(t, cfg) // its cleanup's second Shutdown returns the first's result
	db := openDB(t, primary)
	u := ts.newUser()
	p := ts.newPost(u, "locked")

	lock, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.Exec("SELECT id FROM posts WHERE id = ? FOR UPDATE", p.ID); err != nil {
		t.Fatal(err)
	}
	putDone := make(chan reply)
	go func() {
		putDone <- ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), jsonPost("drained"), "Authorization", "Bearer "+u.Token)
	}()
	// The PUT's locking read shows up in the process list while it waits
	// (MariaDB reports the wait in INNODB_TRX only in some phases; a
	// primary-key lookup waits in "Statistics").
	waitFor(t, "the PUT to wait for the row lock", func() bool {
		var n int
		err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE COMMAND = 'Query' AND INFO LIKE 'SELECT user_id, version FROM posts WHERE id = % FOR UPDATE'`).Scan(&n)
		if err != nil {
			t.Logf("PROCESSLIST: %v", err)
		}
		return n > 0
	})

	shutdownDone := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shutdownDone <- ts.Shutdown(ctx)
	}()
	waitFor(t, "/readyz to fail", func() bool {
		r := ts.do("GET", "/readyz", "")
		return r.status == http.StatusServiceUnavailable && r.errorCode() == "draining"
	})
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", ts.Addr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	lock.Rollback()
	if r := <-putDone; r.status != http.StatusOK {
		t.Fatalf("in-flight PUT got %d %s", r.status, r.body)
	}
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestDatabaseDown stops the origin's MariaDB: requests get a quick 503 with
// a JSON body, /readyz fails, /healthz still answers.
func TestDatabaseDown(t *testing.T) {
	ctx := context.Background()
	m, err := localstack.StartMariaDB(ctx, localstack.MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			m.Stop()
		}
	}()
	cfg := testConfig(t)
	cfg.MySQLDSN = m.DSN("edgecache")
	ts := startServer(t, cfg)
	u := ts.newUser()
	p := ts.newPost(u, "soon unreachable")
	m.Stop()
	stopped = true

	for _, req := range []struct{ method, path, body string }{
		{"GET", fmt.Sprintf("/v1/posts/%d", p.ID), ""},
		{"GET", fmt.Sprintf("/v1/users/%d", u.ID), ""},
		{"GET", fmt.Sprintf("/v1/users/%d/posts", u.ID), ""},
		{"POST", "/v1/users", `{"name":"x","email":"down@example.com"}`},
		{"PUT", fmt.Sprintf("/v1/posts/%d", p.ID), `{"body":"x"}`},
		{"GET", "/readyz", ""},
	} {
		r := ts.do(req.method, req.path, req.body, "Authorization", "Bearer "+u.Token)
		wantError(t, r, http.StatusServiceUnavailable, "database_unavailable")
	}
	ts.do("GET", "/healthz", "").expect(t, http.StatusOK)
}

// TestPrimaryHung stops the origin's MariaDB with SIGSTOP, so that it
// accepts connections and never answers: writes, reads and /readyz get a
// 503 within the query timeout rather than hanging, and writes work again
// once the process continues.
func TestPrimaryHung(t *testing.T) {
	ctx := context.Background()
	m, err := localstack.StartMariaDB(ctx, localstack.MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	cfg := testConfig(t)
	cfg.MySQLDSN = m.DSN("edgecache")
	cfg.QueryTimeout = time.Second // the default
	ts := startServer(t, cfg)
	u := ts.newUser()
	p := ts.newPost(u, "before the hang")
	auth := []string{"Authorization", "Bearer " + u.Token}

	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			m.Resume()
		}
	}()
	for _, req := range []struct{ method, path, body string }{
		{"PUT", fmt.Sprintf("/v1/posts/%d", p.ID), jsonPost("during the hang")},
		{"POST", fmt.Sprintf("/v1/users/%d/posts", u.ID), jsonPost("during the hang")},
		{"DELETE", fmt.Sprintf("/v1/posts/%d", p.ID), ""},
		{"POST", "/v1/users", `{"name":"x","email":"hung@example.com"}`},
		{"GET", fmt.Sprintf("/v1/posts/%d", p.ID), ""},
		{"GET", "/readyz", ""},
	} {
		began := time.Now()
		r := ts.do(req.method, req.path, req.body, auth...)
		t.Logf("%s %s with the primary hung: %d in %s", req.method, req.path, r.status, time.Since(began).Round(time.Millisecond))
		wantError(t, r, http.StatusServiceUnavailable, "database_unavailable")
	}

	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), jsonPost("after the hang"), auth...).expect(t, http.StatusOK)
}

// TestMigrate runs the migrations from several goroutines at once on an
// empty database, then again: each applies exactly once.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("migrate_%d", time.Now().UnixNano())
	if err := primary.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", primary.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- Migrate(ctx, db, zap.NewNop())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := Migrate(ctx, db, zap.NewNop()); err != nil {
		t.Fatal("second run:", err)
	}
	all, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != len(all) || len(all) == 0 {
		t.Fatalf("%d migrations recorded, %d exist", applied, len(all))
	}
	var charset string
	if err := db.QueryRow(`SELECT CCSA.character_set_name FROM information_schema.TABLES T
		JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY CCSA ON CCSA.collation_name = T.table_collation
		WHERE T.table_schema = ? AND T.table_name = 'posts'`, name).Scan(&charset); err != nil {
		t.Fatal(err)
	}
	if charset != "utf8mb4" {
		t.Fatalf("posts is %s, want utf8mb4", charset)
	}
}

// TestSplitStatements cuts files as the mysql client does: at lines ending
// in ";", or in the delimiter a DELIMITER line set, so that trigger bodies
// keep their inner ";".
func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"semicolons", "-- comment\nCREATE TABLE a (\n  x INT\n);\n\n-- another\nCREATE TABLE b (y INT);\nSELECT 1",
			[]string{"CREATE TABLE a (\n  x INT\n)", "CREATE TABLE b (y INT)", "SELECT 1"}},
		{"trigger body", "CREATE TABLE a (x INT);\nDELIMITER //\nCREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW\nBEGIN\n  -- inside\n  SET @x = 1;\n  SET @y = 2;\nEND//\nDELIMITER ;\nSELECT 2;",
			[]string{"CREATE TABLE a (x INT)", "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW\nBEGIN\n  SET @x = 1;\n  SET @y = 2;\nEND", "SELECT 2"}},
		{"any case, any word", "delimiter $$\nSELECT 1; SELECT 2 $$\nSELECT 3;\n$$\nDelimiter ;\nSELECT 4;",
			[]string{"SELECT 1; SELECT 2", "SELECT 3;", "SELECT 4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitStatements(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"DELIMITER\nSELECT 1;", "DELIMITER // ;\nSELECT 1;"} {
		if got, err := splitStatements(bad); err == nil {
			t.Errorf("%q: no error, statements %q", bad, got)
		}
	}
}

// TestMetrics checks the Prometheus text: request counts and latency
// histograms by route and status, pool statistics, queries by target.
func TestMetrics(t *testing.T) {
	ts := startServer(t, testConfig(t))
	u := ts.newUser()
	p := ts.newPost(u, "measured")
	for range 3 {
		ts.do("GET", fmt.Sprintf("/v1/posts/%d", p.ID), "").expect(t, http.StatusOK)
	}
	ts.do("GET", "/v1/posts/abc", "")
	ts.do("GET", "/nowhere", "")
	r := ts.do("GET", "/metrics", "").expect(t, http.StatusOK)
	text := string(r.body)
	for name, want := range map[string]string{
		`origin_http_requests_total{route="GET /v1/posts/{id}",status="200"}`:               "3",
		`origin_http_requests_total{route="GET /v1/posts/{id}",status="400"}`:               "1",
		`origin_http_requests_total{route="POST /v1/users",status="201"}`:                   "1",
		`origin_http_requests_total{route="unmatched",status="404"}`:                        "1",
		`origin_http_request_duration_seconds_count{route="GET /v1/posts/{id}"}`:            "4",
		`origin_http_request_duration_seconds_bucket{route="GET /v1/posts/{id}",le="+Inf"}`: "4",
		`origin_db_pool_max_open{pool="primary"}`:                                           "16",
		`origin_db_queries_total{db="primary",kind="write"}`:                                "2",
		`origin_db_queries_total{db="replica",kind="read"}`:                                 "0",
	} {
		if got := metricValue(t, text, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	for _, name := range []string{`origin_db_pool_open{pool="primary"}`, `origin_db_pool_in_use{pool="primary"}`,
		`origin_db_pool_idle{pool="primary"}`, `origin_db_pool_wait_total{pool="primary"}`, "go_goroutines"} {
		metricValue(t, text, name)
	}
}
