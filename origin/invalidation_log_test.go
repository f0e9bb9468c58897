package origin

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"edgecache/deploy/localstack"

	"go.uber.org/zap"
)

// lastLogID is the newest invalidation_log id, 0 when the log is empty.
func lastLogID(t testing.TB, q interface {
	QueryRow(string, ...any) *sql.Row
}) int64 {
	t.Helper()
	var id int64
	if err := q.QueryRow("SELECT COALESCE(MAX(id), 0) FROM invalidation_log").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// loggedAfter lists the log rows after id as "group=version", sorted, the
// form of Edgecache-Groups tokens.
func loggedAfter(t testing.TB, q interface {
	Query(string, ...any) (*sql.Rows, error)
}, id int64) []string {
	t.Helper()
	rows, err := q.Query("SELECT grp, version FROM invalidation_log WHERE id > ? ORDER BY id", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var grp string
		var version int64
		if err := rows.Scan(&grp, &version); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", grp, version))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// sortedGroups splits an Edgecache-Groups value into sorted tokens.
func sortedGroups(header string) []string {
	groups := strings.Fields(header)
	slices.Sort(groups)
	return groups
}

func wantLogged(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s logged %q, want %q", what, got, want)
	}
}

// TestInvalidationLogHandTypedSQL runs SQL that never passes the origin, in
// a transaction on the binlog-enabled test primary, and checks that the
// triggers logged exactly the groups it changed with their new versions:
// visible inside the transaction, invisible to others until it commits,
// and never for a transaction that rolls back.
func TestInvalidationLogHandTypedSQL(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)

	// Each case starts from user A (version 2, posts version 2) with post P
	// (version 1), and user B (versions 1) with no posts.
	type fixture struct{ a, b, p, inserted int64 }
	for _, tc := range []struct {
		name string
		sql  string
		args func(f fixture) []any
		want func(f fixture) []string
		// row checks, after commit: A's post_count, version and posts
		// version, and P's version (0: P is gone)
		count, version, postsVersion, postVersion int64
	}{
		{"update a post", "UPDATE posts SET body = 'typed by hand' WHERE id = ?",
			func(f fixture) []any { return []any{f.p} },
			func(f fixture) []string {
				return []string{fmt.Sprintf("post/%d=2", f.p), fmt.Sprintf("user/%d/posts=3", f.a)}
			},
			1, 2, 3, 2},
		{"update with the origin's own version + 1", "UPDATE posts SET body = 'x', version = version + 1 WHERE id = ?",
			func(f fixture) []any { return []any{f.p} },
			func(f fixture) []string {
				return []string{fmt.Sprintf("post/%d=2", f.p), fmt.Sprintf("user/%d/posts=3", f.a)}
			},
			1, 2, 3, 2},
		{"insert a post", "INSERT INTO posts (user_id, body, created_at, updated_at) VALUES (?, 'typed', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
			func(f fixture) []any { return []any{f.a} },
			func(f fixture) []string {
				return []string{fmt.Sprintf("post/%d=1", f.inserted), fmt.Sprintf("user/%d=3", f.a), fmt.Sprintf("user/%d/posts=3", f.a)}
			},
			2, 3, 3, 1},
		{"delete a post", "DELETE FROM posts WHERE id = ?",
			func(f fixture) []any { return []any{f.p} },
			func(f fixture) []string {
				return []string{fmt.Sprintf("post/%d=2", f.p), fmt.Sprintf("user/%d=3", f.a), fmt.Sprintf("user/%d/posts=3", f.a)}
			},
			0, 3, 3, 0},
		{"move a post to another user", "UPDATE posts SET user_id = ? WHERE id = ?",
			func(f fixture) []any { return []any{f.b, f.p} },
			func(f fixture) []string {
				return []string{fmt.Sprintf("post/%d=2", f.p), fmt.Sprintf("user/%d=3", f.a), fmt.Sprintf("user/%d/posts=3", f.a),
					fmt.Sprintf("user/%d=2", f.b), fmt.Sprintf("user/%d/posts=2", f.b)}
			},
			0, 3, 3, 2},
		{"rename a user", "UPDATE users SET name = 'renamed' WHERE id = ?",
			func(f fixture) []any { return []any{f.a} },
			func(f fixture) []string { return []string{fmt.Sprintf("user/%d=3", f.a)} },
			1, 3, 2, 1},
		{"change what no one sees", "UPDATE users SET email = CONCAT('hidden-', email) WHERE id = ?",
			func(f fixture) []any { return []any{f.a} },
			func(f fixture) []string { return nil },
			1, 2, 2, 1},
		{"set a version back by hand", "UPDATE users SET posts_version = 1, version = 1 WHERE id = ?",
			func(f fixture) []any { return []any{f.a} },
			func(f fixture) []string { return nil },
			1, 2, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := ts.newUser(), ts.newUser()
			p := ts.newPost(a, "by the origin")
			f := fixture{a: a.ID, b: b.ID, p: p.ID}
			var postUpdated, userUpdated time.Time
			if err := db.QueryRow("SELECT p.updated_at, u.updated_at FROM posts p JOIN users u ON u.id = p.user_id WHERE p.id = ?", p.ID).
				Scan(&postUpdated, &userUpdated); err != nil {
				t.Fatal(err)
			}
			before := lastLogID(t, db)

			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			res, err := tx.Exec(tc.sql, tc.args(f)...)
			if err != nil {
				t.Fatal(err)
			}
			if f.inserted, err = res.LastInsertId(); err != nil {
				t.Fatal(err)
			}
			want := tc.want(f)
			wantLogged(t, "inside the transaction", loggedAfter(t, tx, before), want...)
			wantLogged(t, "seen by others before the commit", loggedAfter(t, db, before))
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			wantLogged(t, "after the commit", loggedAfter(t, db, before), want...)
			wantRow(t, db, a.ID, tc.count, tc.version, tc.postsVersion)

			var postVersion int64
			var postUpdatedNow time.Time
			err = db.QueryRow("SELECT version, updated_at FROM posts WHERE id = ?", p.ID).Scan(&postVersion, &postUpdatedNow)
			if err != nil && err != sql.ErrNoRows {
				t.Fatal(err)
			}
			if postVersion != tc.postVersion {
				t.Errorf("post version %d, want %d", postVersion, tc.postVersion)
			}
			// Last-Modified moves with what it describes.
			if tc.postVersion > 1 && !postUpdatedNow.After(postUpdated) {
				t.Errorf("post updated_at %s did not move from %s", postUpdatedNow, postUpdated)
			}
			var userUpdatedNow time.Time
			if err := db.QueryRow("SELECT updated_at FROM users WHERE id = ?", a.ID).Scan(&userUpdatedNow); err != nil {
				t.Fatal(err)
			}
			if moved := userUpdatedNow.After(userUpdated); moved != (tc.version > 2) {
				t.Errorf("user updated_at moved %v (%s to %s) while the user version went to %d", moved, userUpdated, userUpdatedNow, tc.version)
			}
		})
	}

	t.Run("rolled back", func(t *testing.T) {
		a := ts.newUser()
		p := ts.newPost(a, "kept")
		before := lastLogID(t, db)
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("UPDATE posts SET body = 'undone' WHERE id = ?", p.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("DELETE FROM posts WHERE id = ?", p.ID); err != nil {
			t.Fatal(err)
		}
		if got := loggedAfter(t, tx, before); len(got) != 5 {
			t.Fatalf("inside the transaction: logged %q, want 5 rows", got)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		wantLogged(t, "after the rollback", loggedAfter(t, db, before))
		wantRow(t, db, a.ID, 1, 2, 2)
	})
}

// TestInvalidationLogOriginWrites checks that each origin write logs
// exactly the groups its Edgecache-Groups header names, at the same
// versions, and that each moves every version it touches by one.
func TestInvalidationLogOriginWrites(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)

	logged := func(what string, r reply, want ...string) {
		t.Helper()
		wantLogged(t, what+" (the header)", sortedGroups(r.header.Get(groupsHeader)), want...)
	}
	before := lastLogID(t, db)
	r := ts.do("POST", "/v1/users", `{"name":"Logged","email":"logged-origin@example.com"}`).expect(t, http.StatusCreated)
	var u createdUser
	r.decode(t, &u)
	logged("create user", r, fmt.Sprintf("user/%d=1", u.ID))
	wantLogged(t, "create user", loggedAfter(t, db, before), sortedGroups(r.header.Get(groupsHeader))...)
	auth := []string{"Authorization", "Bearer " + u.Token}

	before = lastLogID(t, db)
	r = ts.do("POST", fmt.Sprintf("/v1/users/%d/posts", u.ID), jsonPost("logged"), auth...).expect(t, http.StatusCreated)
	var p post
	r.decode(t, &p)
	logged("create post", r, fmt.Sprintf("post/%d=1", p.ID), fmt.Sprintf("user/%d=2", u.ID), fmt.Sprintf("user/%d/posts=2", u.ID))
	wantLogged(t, "create post", loggedAfter(t, db, before), sortedGroups(r.header.Get(groupsHeader))...)

	before = lastLogID(t, db)
	r = ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), jsonPost("logged again"), auth...).expect(t, http.StatusOK)
	logged("update post", r, fmt.Sprintf("post/%d=2", p.ID), fmt.Sprintf("user/%d/posts=3", u.ID))
	wantLogged(t, "update post", loggedAfter(t, db, before), sortedGroups(r.header.Get(groupsHeader))...)

	before = lastLogID(t, db)
	r = ts.do("DELETE", fmt.Sprintf("/v1/posts/%d", p.ID), "", auth...).expect(t, http.StatusNoContent)
	logged("delete post", r, fmt.Sprintf("post/%d=3", p.ID), fmt.Sprintf("user/%d=3", u.ID), fmt.Sprintf("user/%d/posts=4", u.ID))
	wantLogged(t, "delete post", loggedAfter(t, db, before), sortedGroups(r.header.Get(groupsHeader))...)
	wantRow(t, db, u.ID, 0, 3, 4)

	// A refused write logs nothing.
	before = lastLogID(t, db)
	wantError(t, ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), jsonPost("gone"), auth...), http.StatusNotFound, "not_found")
	wantLogged(t, "refused update", loggedAfter(t, db, before))
}

// TestMigrateWithoutSuper migrates a new database on the binlog-enabled
// test primary as an account that has every privilege on that database
// but not SUPER, as the application's account on RDS: creating the
// triggers needs log_bin_trust_function_creators (localstack sets it).
func TestMigrateWithoutSuper(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("nosuper_%d", time.Now().UnixNano())
	if err := primary.Exec(ctx, "CREATE DATABASE "+name,
		fmt.Sprintf("CREATE USER '%s'@'%%'", name),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON %s.* TO '%s'@'%%'", name, name)); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", fmt.Sprintf("%s@tcp(127.0.0.1:%d)/%s?%s", name, primary.Port, name, localstack.DSNOptions))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var super int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'SUPER'").Scan(&super); err != nil || super != 0 {
		t.Fatalf("the account has SUPER (%d, %v): the test would prove nothing", super, err)
	}
	if err := Migrate(ctx, db, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	var triggers int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", name).Scan(&triggers); err != nil {
		t.Fatal(err)
	}
	if triggers != 8 {
		t.Fatalf("%d triggers, want 8", triggers)
	}
}
