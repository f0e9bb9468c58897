package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"edgecache/origin"
)

// origin/GUIDE.md, end to end: an API of someone else's, over a table that
// is neither posts nor users, gets its invalidation_log triggers from
// `origin triggers` (origin.ApplyTriggers), and an UPDATE typed into
// MariaDB, which never passes a proxy, reaches the proxy's cached answers
// through the durable invalidator: the comment, and its thread's list.
func TestTypedUpdateOfAGeneratedTriggersTableReachesTheCache(t *testing.T) {
	inv := durableInvalidator(t)
	ctx := context.Background()
	if err := dbPrimary.Exec(ctx, "DROP TABLE IF EXISTS edgecache.comments, edgecache.threads",
		`CREATE TABLE edgecache.threads (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
			comments_version BIGINT UNSIGNED NOT NULL DEFAULT 1)`,
		`CREATE TABLE edgecache.comments (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
			thread_id BIGINT UNSIGNED NOT NULL, body VARCHAR(200) NOT NULL,
			version BIGINT UNSIGNED NOT NULL DEFAULT 1)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbPrimary.Exec(ctx, "DROP TABLE edgecache.comments, edgecache.threads") })
	db, err := sql.Open("mysql", dbPrimary.DSN("edgecache"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	groups, err := origin.ParseTriggerGroups("comment/{id}=version,thread/{thread_id}/comments=threads.comments_version")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := origin.ApplyTriggers(ctx, db, "comments", groups); err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec("INSERT INTO threads () VALUES ()")
	if err != nil {
		t.Fatal(err)
	}
	thread, _ := res.LastInsertId()
	if res, err = db.Exec("INSERT INTO comments (thread_id, body) VALUES (?, 'first')", thread); err != nil {
		t.Fatal(err)
	}
	comment, _ := res.LastInsertId()

	// The other API's origin, as the guide says to write it: each answer
	// names its groups at the versions it read.
	o := newScripted(t)
	commentPath, listPath := fmt.Sprintf("/v1/comments/%d", comment), fmt.Sprintf("/v1/threads/%d/comments", thread)
	o.handle(commentPath, func(c *fasthttp.RequestCtx) {
		var body string
		var version int64
		if err := db.QueryRow("SELECT body, version FROM comments WHERE id = ?", comment).Scan(&body, &version); err != nil {
			c.Error(err.Error(), 500)
			return
		}
		c.Response.Header.Set("Edgecache-Groups", fmt.Sprintf("comment/%d=%d", comment, version))
		cacheable(body)(c)
	})
	o.handle(listPath, func(c *fasthttp.RequestCtx) {
		var bodies []string
		var version int64
		if err := db.QueryRow("SELECT comments_version FROM threads WHERE id = ?", thread).Scan(&version); err != nil {
			c.Error(err.Error(), 500)
			return
		}
		rows, err := db.Query("SELECT body FROM comments WHERE thread_id = ? ORDER BY id", thread)
		if err != nil {
			c.Error(err.Error(), 500)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var b string
			rows.Scan(&b)
			bodies = append(bodies, b)
		}
		c.Response.Header.Set("Edgecache-Groups", fmt.Sprintf("thread/%d/comments=%d", thread, version))
		cacheable(strings.Join(bodies, ","))(c)
	})
	waitLogApplied(t, inv) // the inserts' rows
	p := startProxy(t, testConfig(o.url()))
	for _, path := range []string{commentPath, listPath} {
		get(t, p, path)
		if r := get(t, p, path); string(r.Body()) != "first" || !strings.HasPrefix(cacheStatus(r), "edgecache; hit") {
			t.Fatalf("%s: %q (Cache-Status %q), want a hit on the stored answer", path, r.Body(), cacheStatus(r))
		}
	}

	if _, err := db.Exec("UPDATE comments SET body = 'typed by hand' WHERE id = ?", comment); err != nil {
		t.Fatal(err)
	}
	waitLogApplied(t, inv)
	for _, path := range []string{commentPath, listPath} {
		if r := get(t, p, path); string(r.Body()) != "typed by hand" {
			t.Errorf("STALE %s after an UPDATE typed into the database: %q (Cache-Status %q)", path, r.Body(), cacheStatus(r))
		}
	}
}
