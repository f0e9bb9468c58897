package origin

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitReplicaCaughtUp waits until the replica has applied everything the
// primary has written so far (MASTER_POS_WAIT on the primary's binlog
// position).
func waitReplicaCaughtUp(t testing.TB) {
	t.Helper()
	p, r := openDB(t, primary), openDB(t, replica)
	rows, err := p.Query("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		t.Fatal("SHOW MASTER STATUS: no row")
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	file, pos := string(vals[0]), string(vals[1])
	rows.Close()
	var got sql.NullInt64
	if err := r.QueryRow("SELECT MASTER_POS_WAIT(?, ?, 60)", file, pos).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !got.Valid || got.Int64 < 0 {
		t.Fatalf("replica did not reach %s:%s (MASTER_POS_WAIT = %v)", file, pos, got)
	}
}

// TestReplicaRouting stops the replica's SQL thread so that it lags, writes
// through the origin, and checks that plain reads come from the (old)
// replica while Edgecache-Fresh reads come from the primary, and that rows
// the replica lacks are read from the primary rather than answered 404.
func TestReplicaRouting(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReplicaDSNs = []string{replica.DSN("edgecache")}
	ts := startServer(t, cfg)
	u := ts.newUser()
	p := ts.newPost(u, "before the lag")
	waitReplicaCaughtUp(t)
	postPath := fmt.Sprintf("/v1/posts/%d", p.ID)
	listPath := fmt.Sprintf("/v1/users/%d/posts", u.ID)
	ts.do("GET", postPath, "").expect(t, http.StatusOK)

	ctx := context.Background()
	if err := replica.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	restarted := false
	restart := func() {
		if !restarted {
			restarted = true
			if err := replica.Exec(ctx, "START SLAVE SQL_THREAD"); err != nil {
				t.Error(err)
			}
		}
	}
	defer restart()

	ts.do("PUT", postPath, jsonPost("after the lag"), "Authorization", "Bearer "+u.Token).expect(t, http.StatusOK)
	newPost := ts.newPost(u, "new while lagging")
	newUser := ts.newUser()

	// A plain read comes from the lagging replica: old data, old versions.
	var got post
	r := ts.do("GET", postPath, "").expect(t, http.StatusOK)
	r.decode(t, &got)
	if got.Body != "before the lag" || got.Version != 1 {
		t.Fatalf("plain read gave %q version %d; want the replica's old row", got.Body, got.Version)
	}
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("post/%d=1", p.ID))
	// The new post and user are not on the replica yet: the primary has
	// them, and a 404 would contradict their acknowledged creation. A row
	// that exists nowhere is still a 404, once the primary agrees.
	ts.do("GET", fmt.Sprintf("/v1/posts/%d", newPost.ID), "").expect(t, http.StatusOK).decode(t, &got)
	if got.Body != "new while lagging" {
		t.Fatalf("new post read as %q", got.Body)
	}
	ts.do("GET", fmt.Sprintf("/v1/users/%d", newUser.ID), "").expect(t, http.StatusOK)
	ts.do("GET", fmt.Sprintf("/v1/users/%d/posts", newUser.ID), "").expect(t, http.StatusOK)
	wantAbsent(t, ts.do("GET", "/v1/posts/9223372036854775807", ""), "post/9223372036854775807=0")
	r = ts.do("GET", listPath, "").expect(t, http.StatusOK)
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("user/%d/posts=2", u.ID))

	// Edgecache-Fresh: 1 reads the primary: new data, new versions.
	r = ts.do("GET", postPath, "", "Edgecache-Fresh", "1").expect(t, http.StatusOK)
	r.decode(t, &got)
	if got.Body != "after the lag" || got.Version != 2 {
		t.Fatalf("fresh read gave %q version %d; want the primary's row", got.Body, got.Version)
	}
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("post/%d=2", p.ID))
	ts.do("GET", fmt.Sprintf("/v1/posts/%d", newPost.ID), "", "Edgecache-Fresh", "1").expect(t, http.StatusOK)
	r = ts.do("GET", listPath, "", "Edgecache-Fresh", "1").expect(t, http.StatusOK)
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("user/%d/posts=4", u.ID))
	r = ts.do("GET", fmt.Sprintf("/v1/users/%d", u.ID), "", "Edgecache-Fresh", "1").expect(t, http.StatusOK)
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("user/%d=3", u.ID))

	// Once the replica catches up, plain reads see the new row.
	restart()
	waitReplicaCaughtUp(t)
	ts.do("GET", postPath, "").expect(t, http.StatusOK).decode(t, &got)
	if got.Body != "after the lag" {
		t.Fatalf("after catching up the replica gives %q", got.Body)
	}

	m := ts.do("GET", "/metrics", "").expect(t, http.StatusOK)
	for _, want := range []string{`origin_db_queries_total{db="replica",kind="read"}`, `origin_db_queries_total{db="primary",kind="read"}`} {
		if metricValue(t, string(m.body), want) == "0" {
			t.Errorf("%s is 0", want)
		}
	}
	if v := metricValue(t, string(m.body), "origin_db_replica_fallbacks_total"); v != "0" {
		t.Errorf("fallbacks %s with a healthy replica", v)
	}
	if v := metricValue(t, string(m.body), "origin_db_replica_no_rows_total"); v != "4" {
		t.Errorf("origin_db_replica_no_rows_total %s, want 4 (new post, new user, their list, no such post)", v)
	}
}

// TestReplicaDownFallsBackToPrimary points the origin at a replica that
// refuses connections: reads still succeed, from the primary. The first
// failure is a fallback and marks the replica down; later reads pass it
// over.
func TestReplicaDownFallsBackToPrimary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := l.Addr().String()
	l.Close()
	cfg := testConfig(t)
	cfg.ReplicaDSNs = []string{"edgecache@tcp(" + deadAddr + ")/edgecache?parseTime=true&loc=UTC&timeout=1s"}
	ts := startServer(t, cfg)
	u := ts.newUser()
	p := ts.newPost(u, "still readable")

	var got post
	ts.do("GET", fmt.Sprintf("/v1/posts/%d", p.ID), "").expect(t, http.StatusOK).decode(t, &got)
	if got.Body != "still readable" {
		t.Fatalf("got %q", got.Body)
	}
	ts.do("GET", fmt.Sprintf("/v1/users/%d/posts", u.ID), "").expect(t, http.StatusOK)
	m := string(ts.do("GET", "/metrics", "").expect(t, http.StatusOK).body)
	for name, want := range map[string]string{
		"origin_db_replica_fallbacks_total":                 "1",
		`origin_db_replica_skips_total{replica="replica1"}`: "1",
		`origin_db_replica_up{replica="replica1"}`:          "0",
		`origin_db_queries_total{db="replica",kind="read"}`: "1",
	} {
		if got := metricValue(t, m, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	ts.do("GET", "/readyz", "").expect(t, http.StatusOK) // the primary is what readiness needs
}

// TestReplicaHung stops the replica's mariadbd (SIGSTOP), so that it
// accepts connections and never answers. Reads keep answering 200: the
// first waits for the query timeout and is retried on the primary; the
// replica is then passed over, so later reads do not touch it. Once the
// process continues, a background ping puts it back in the rotation.
func TestReplicaHung(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReplicaDSNs = []string{replica.DSN("edgecache")}
	cfg.QueryTimeout = time.Second // the default
	cfg.ReplicaDownFor = 50 * time.Millisecond
	ts := startServer(t, cfg)
	u := ts.newUser()
	p := ts.newPost(u, "on both")
	waitReplicaCaughtUp(t)
	path := fmt.Sprintf("/v1/posts/%d", p.ID)
	ts.do("GET", path, "").expect(t, http.StatusOK)
	metric := func(name string) string {
		t.Helper()
		return metricValue(t, string(ts.do("GET", "/metrics", "").expect(t, http.StatusOK).body), name)
	}
	const (
		replicaReads = `origin_db_queries_total{db="replica",kind="read"}`
		up           = `origin_db_replica_up{replica="replica1"}`
		skips        = `origin_db_replica_skips_total{replica="replica1"}`
	)
	if got := metric(replicaReads); got != "1" {
		t.Fatalf("%s = %s before the hang, want 1", replicaReads, got)
	}

	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := replica.Resume(); err != nil {
				t.Error(err)
			}
		}
	}
	defer resume()
	var got post
	began := time.Now()
	ts.do("GET", path, "").expect(t, http.StatusOK).decode(t, &got)
	t.Logf("first read with the replica hung: %s", time.Since(began).Round(time.Millisecond))
	if got.Body != "on both" {
		t.Fatalf("read %q", got.Body)
	}
	if got := metric(up); got != "0" {
		t.Fatalf("%s = %s after a timeout, want 0", up, got)
	}
	began = time.Now()
	for range 3 {
		ts.do("GET", path, "").expect(t, http.StatusOK)
	}
	t.Logf("3 more reads: %s", time.Since(began).Round(time.Millisecond))
	for name, want := range map[string]string{
		replicaReads:                        "2", // the one that timed out, and no more
		skips:                               "3",
		"origin_db_replica_fallbacks_total": "1",
	} {
		if got := metric(name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}

	resume()
	waitFor(t, "a ping to put the replica back", func() bool { return metric(up) == "1" })
	ts.do("GET", path, "").expect(t, http.StatusOK)
	if got := metric(replicaReads); got != "3" {
		t.Errorf("%s = %s after the replica came back, want 3", replicaReads, got)
	}
}

// metricValue finds a metric line by its exact name and labels.
func metricValue(t testing.TB, text, name string) string {
	t.Helper()
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return v
		}
	}
	t.Fatalf("metric %s not found in:\n%s", name, text)
	return ""
}
