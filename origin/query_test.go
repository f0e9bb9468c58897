package origin

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// readPaths are GETs of each read route: a post, a page with a next link,
// the last page, an empty page, a user, and the 404s of a post and a user.
func readPaths(t *testing.T, ts *testServer) []string {
	t.Helper()
	u, empty := ts.newUser(), ts.newUser()
	var last post
	for i := range 3 {
		last = ts.newPost(u, fmt.Sprintf("post <%d> & \"quotes\" ✓", i))
	}
	return []string{
		fmt.Sprintf("/v1/posts/%d", last.ID),
		fmt.Sprintf("/v1/users/%d/posts?limit=2", u.ID),
		fmt.Sprintf("/v1/users/%d/posts?before=%d&limit=2", u.ID, last.ID-1),
		fmt.Sprintf("/v1/users/%d/posts", empty.ID),
		fmt.Sprintf("/v1/users/%d", u.ID),
		"/v1/posts/9223372036854775807",
		"/v1/users/9223372036854775807",
		"/v1/users/9223372036854775807/posts",
	}
}

// sameAnswer fails unless two origins answered a GET of path alike.
func sameAnswer(t *testing.T, path string, got, want reply) {
	t.Helper()
	if got.status != want.status || string(got.body) != string(want.body) {
		t.Errorf("GET %s: %d %s, want %d %s", path, got.status, got.body, want.status, want.body)
	}
	for _, h := range []string{"Etag", "Last-Modified", "Cache-Control", groupsHeader, "Content-Type"} {
		if g, w := got.header.Get(h), want.header.Get(h); g != w {
			t.Errorf("GET %s: %s %q, want %q", path, h, g, w)
		}
	}
}

// TestReadsWithoutInterpolation reads through an origin whose DSN turns
// interpolateParams off, so that the driver refuses to interpolate
// (driver.ErrSkip) and reads are prepared statements: every answer is the
// one of an origin with the default DSN.
func TestReadsWithoutInterpolation(t *testing.T) {
	ts := startServer(t, testConfig(t))
	cfg := testConfig(t)
	cfg.MySQLDSN = strings.Replace(cfg.MySQLDSN, "interpolateParams=true", "interpolateParams=false", 1)
	if !strings.Contains(cfg.MySQLDSN, "interpolateParams=false") {
		t.Fatalf("DSN %s does not interpolate to begin with", cfg.MySQLDSN)
	}
	prepared := startServer(t, cfg)
	for _, path := range readPaths(t, ts) {
		sameAnswer(t, path, prepared.do("GET", path, ""), ts.do("GET", path, ""))
	}
}

// TestReadsAfterConnectionsKilled kills every pooled connection of an
// origin in MariaDB, as a restart or a failover does: the next reads are
// answered, on new connections, as before.
func TestReadsAfterConnectionsKilled(t *testing.T) {
	ts := startServer(t, testConfig(t))
	paths := readPaths(t, ts)
	var before []reply
	for _, path := range paths {
		before = append(before, ts.do("GET", path, ""))
	}
	db := openDB(t, primary)
	killed := killConnections(t, db)
	if killed == 0 {
		t.Fatal("no connection to kill")
	}
	for i, path := range paths {
		sameAnswer(t, path, ts.do("GET", path, ""), before[i])
	}
	if before[0].status != http.StatusOK {
		t.Fatalf("GET %s: %d", paths[0], before[0].status)
	}
}

// killConnections kills every idle connection of db's user but db's own,
// and returns how many it killed.
func killConnections(t *testing.T, db *sql.DB) int {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Idle ones only: the replica's replication connection (Binlog Dump)
	// stays, for the tests that follow.
	rows, err := conn.QueryContext(ctx, `SELECT id FROM information_schema.processlist
		WHERE user = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AND command = 'Sleep'`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var own int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&own); err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, id := range ids {
		if id == own {
			continue
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
		killed++
	}
	return killed
}
