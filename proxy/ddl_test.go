package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"edgecache/proxy/invalidator"
)

// Issue 17: schema changes typed into the primary fire no trigger and log
// nothing; the invalidator finds them and flushes memcached. Each case
// fills a post through two proxies (stored, then L1 copies), changes the
// table under them, and expects both to answer from the table as it is now.
func TestSchemaChangesTypedIntoTheDatabaseReachEveryProxy(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change changes posts so that post id reads as want afterwards
		change func(t *testing.T, db *sql.DB, id int64)
		want   string // the post's body afterwards; "" means 404
	}{
		{"truncate", func(t *testing.T, db *sql.DB, id int64) {
			execAll(t, db, "TRUNCATE TABLE posts")
		}, ""},
		{"restore from a backup", func(t *testing.T, db *sql.DB, id int64) {
			execAll(t, db, fmt.Sprintf("UPDATE posts_backup SET body = 'as in the backup' WHERE id = %d", id))
			trigs := postsTriggers(t, db)
			execAll(t, db, "DROP TABLE posts", "RENAME TABLE posts_backup TO posts")
			execAll(t, db, trigs...)
			execAll(t, db, "ALTER TABLE posts ADD CONSTRAINT posts_user FOREIGN KEY (user_id) REFERENCES users (id)")
		}, "as in the backup"},
		{"rename swap", func(t *testing.T, db *sql.DB, id int64) {
			trigs := postsTriggers(t, db)
			execAll(t, db, "CREATE TABLE posts_new LIKE posts",
				fmt.Sprintf("INSERT INTO posts_new SELECT * FROM posts WHERE id <> %d", id),
				"RENAME TABLE posts TO posts_old, posts_new TO posts", "DROP TABLE posts_old")
			execAll(t, db, trigs...)
			execAll(t, db, "ALTER TABLE posts ADD CONSTRAINT posts_user FOREIGN KEY (user_id) REFERENCES users (id)")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := durableInvalidator(t)
			db := primaryDB(t)
			p1, p2 := startProxy(t, testConfig(realOriginURL)), startProxy(t, testConfig(realOriginURL))
			u := createUser(t, p1)
			post := createPost(t, p1, u, "cached before the change")
			// The backup is taken now (and edited by the restore case).
			execAll(t, db, "DROP TABLE IF EXISTS posts_backup", "CREATE TABLE posts_backup LIKE posts",
				"INSERT INTO posts_backup SELECT * FROM posts")
			path := fmt.Sprintf("/v1/posts/%d", post.ID)
			for _, p := range []*Proxy{p1, p2, p1, p2} {
				get(t, p, path)
			}
			if cs := cacheStatus(get(t, p1, path)); !strings.Contains(cs, "hit") {
				t.Fatalf("the post is not served from the cache before the change: %q", cs)
			}

			start := time.Now()
			tc.change(t, db, post.ID)
			waitSchemaRecorded(t, inv, db)
			t.Logf("the change began %s before the invalidator recorded it", time.Since(start).Round(time.Millisecond))
			for i, p := range []*Proxy{p1, p2} {
				r := get(t, p, path)
				var pp apiPost
				switch {
				case tc.want == "" && r.StatusCode() != 404:
					t.Errorf("proxy %d: %d %s (Cache-Status %q) after the change, want 404", i, r.StatusCode(), r.Body(), cacheStatus(r))
				case tc.want != "" && r.StatusCode() != 200:
					t.Errorf("proxy %d: %d %s (Cache-Status %q) after the change, want 200", i, r.StatusCode(), r.Body(), cacheStatus(r))
				case tc.want != "":
					if decodeInto(t, r.Body(), &pp); pp.Body != tc.want {
						t.Errorf("proxy %d: STALE %q (Cache-Status %q), want %q", i, pp.Body, cacheStatus(r), tc.want)
					}
				}
			}
		})
	}
}

// With leases, proxies serve L1 copies without asking memcached; after the
// invalidator has flushed and waited a lease duration, none does.
func TestTruncateReachesL1(t *testing.T) {
	ps, inv := leaseStack(t, "ddl")
	db := primaryDB(t)
	waitSchemaRecorded(t, inv, db)

	u := createUser(t, ps[0])
	post := createPost(t, ps[0], u, "in L1")
	waitLogApplied(t, inv) // its moves come after the write's own: an L1 copy warmed before them is dropped
	path := fmt.Sprintf("/v1/posts/%d", post.ID)
	for _, p := range ps {
		warmL1(t, p, path)
	}
	execAll(t, db, "TRUNCATE TABLE posts")
	waitSchemaRecorded(t, inv, db)
	for i, p := range ps {
		r := get(t, p, path)
		if r.StatusCode() != 404 {
			t.Errorf("proxy %d: %d %s (Cache-Status %q) after TRUNCATE, want 404", i, r.StatusCode(), r.Body(), cacheStatus(r))
		}
	}
}

func primaryDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dbPrimary.DSN("edgecache"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execAll(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// postsTriggers returns the statements that create posts' triggers again,
// as a dump restores them.
func postsTriggers(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'posts'")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	var stmts []string
	for _, n := range names {
		var name, mode, stmt, cs, coll, dbColl string
		var created sql.NullString
		if err := db.QueryRow("SHOW CREATE TRIGGER "+n).Scan(&name, &mode, &stmt, &cs, &coll, &dbColl, &created); err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, stmt)
	}
	if len(stmts) == 0 {
		t.Fatal("posts has no triggers")
	}
	return stmts
}

// waitSchemaRecorded waits until the invalidator has recorded posts as it
// is now: it records a table's state only after flushing memcached for it
// and waiting out the leases, so from then on no proxy serves what was
// cached before.
func waitSchemaRecorded(t *testing.T, inv *invalidator.Background, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	deadline := time.After(time.Minute)
	for {
		changed := inv.Changed()
		var recorded int
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM invalidation_ddl AS d "+
			"JOIN information_schema.INNODB_SYS_TABLES AS i ON i.NAME = CONCAT(DATABASE(), '/', d.table_name) "+
			"WHERE d.table_name = 'posts' AND d.table_id = i.TABLE_ID").Scan(&recorded)
		if err != nil {
			t.Fatal(err)
		}
		if recorded == 1 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("the invalidator never recorded the schema change")
		}
	}
}
