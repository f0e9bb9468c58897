package origin

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// Bad group specifications are refused with a message naming what is
// wrong, before any SQL is written.
func TestTriggerGroupsRefuseBadInput(t *testing.T) {
	for spec, complaint := range map[string]string{
		"comment/{id}":                         "want NAME=VERSION",
		"comment/{id}=":                        "want NAME=VERSION",
		"comments=version":                     "no {column} placeholder",
		"comment/{id-x}=version":               "not a column name",
		"comment/{id}=ver sion":                "not a column name",
		"it's/{id}=version":                    "cannot be part of a group name",
		"comment {id}=version":                 "cannot be part of a group name",
		"comment/{id}/{post_id}=posts.counter": "exactly one placeholder",
		"comment/{id}=posts.":                  "not table.column",
		"comment/{id}=a.b.c":                   "not table.column",
	} {
		if _, err := ParseTriggerGroups(spec); err == nil || !strings.Contains(err.Error(), complaint) {
			t.Errorf("%q: %v, want an error saying %q", spec, err, complaint)
		}
	}
	groups := []TriggerGroup{{Name: "comment/{id}", Version: "version"}}
	for table, complaint := range map[string]string{
		"comments; DROP TABLE users": "not a table name",
		strings.Repeat("t", 60):      "longer than 64",
	} {
		if _, err := Triggers(table, groups); err == nil || !strings.Contains(err.Error(), complaint) {
			t.Errorf("table %q: %v, want an error saying %q", table, err, complaint)
		}
	}
	if _, err := Triggers("comments", nil); err == nil {
		t.Error("no groups: accepted")
	}
}

// The generator's triggers for posts log what the hand-written ones of
// migrations/0002 log for posts' groups: each change to posts, run on a
// copy of the schema that has only the generated triggers, logs the same
// post/{id} and user/{user_id}/posts rows at the same versions, and
// leaves the same versions in the rows. (The hand-written ones also keep
// users.post_count and log user/{id}, which belong to users' own rules.)
func TestGeneratedPostsTriggersMatchTheMigration(t *testing.T) {
	ts := startServer(t, testConfig(t)) // migrated
	migrated := openDB(t, primary)
	ctx := context.Background()
	const schema = "generated_triggers"
	if err := primary.Exec(ctx, "DROP DATABASE IF EXISTS "+schema, "CREATE DATABASE "+schema,
		"CREATE TABLE "+schema+".users LIKE edgecache.users",
		"CREATE TABLE "+schema+".posts LIKE edgecache.posts",
		"CREATE TABLE "+schema+".invalidation_log LIKE edgecache.invalidation_log"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Exec(ctx, "DROP DATABASE "+schema) })
	generated, err := sql.Open("mysql", primary.DSN(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer generated.Close()
	groups, err := ParseTriggerGroups("post/{id}=version,user/{user_id}/posts=users.posts_version")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyTriggers(ctx, generated, "posts", groups); err != nil {
		t.Fatal(err)
	}

	// The same users, with the same ids, in both schemas.
	a, b := ts.newUser(), ts.newUser()
	for _, id := range []int64{a.ID, b.ID} {
		if _, err := generated.Exec("INSERT INTO users SELECT * FROM edgecache.users WHERE id = ?", id); err != nil {
			t.Fatal(err)
		}
	}
	// logged runs stmt on db and returns the post's groups it logged, and
	// the versions it left: the post's, then a's and b's posts_version.
	var post int64
	postGroups := func(g string) bool {
		return strings.HasPrefix(g, fmt.Sprintf("post/%d=", post)) || strings.HasSuffix(strings.Split(g, "=")[0], "/posts")
	}
	logged := func(db *sql.DB, stmt string, args ...any) (groups []string, versions string) {
		t.Helper()
		before := lastLogID(t, db)
		res, err := db.Exec(stmt, args...)
		if err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		if id, _ := res.LastInsertId(); post == 0 {
			post = id
		}
		for _, g := range loggedAfter(t, db, before) {
			if postGroups(g) {
				groups = append(groups, g)
			}
		}
		var pv sql.NullInt64
		var av, bv int64
		if err := db.QueryRow(`SELECT (SELECT version FROM posts WHERE id = ?),
			(SELECT posts_version FROM users WHERE id = ?), (SELECT posts_version FROM users WHERE id = ?)`,
			post, a.ID, b.ID).Scan(&pv, &av, &bv); err != nil {
			t.Fatal(err)
		}
		return groups, fmt.Sprintf("post v%d, a's posts v%d, b's posts v%d", pv.Int64, av, bv)
	}
	check := func(step string, mGroups []string, mVersions string, gGroups []string, gVersions string) {
		t.Helper()
		if strings.Join(mGroups, " ") != strings.Join(gGroups, " ") || mVersions != gVersions {
			t.Errorf("%s:\n migration logged %q, %s\n generated logged %q, %s", step, mGroups, mVersions, gGroups, gVersions)
		}
	}

	const insert = "INSERT INTO posts (id, user_id, body, created_at, updated_at) VALUES (?, ?, 'first', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
	mGroups, mVersions := logged(migrated, insert, nil, a.ID) // id NULL: the next AUTO_INCREMENT
	gGroups, gVersions := logged(generated, insert, post, a.ID)
	check("insert", mGroups, mVersions, gGroups, gVersions)
	for _, stmt := range []struct{ name, sql string }{
		{"update", "UPDATE posts SET body = 'second' WHERE id = ?"},
		{"update with the origin's own version + 1", "UPDATE posts SET body = 'third', version = version + 1 WHERE id = ?"},
		{"move to another user", fmt.Sprintf("UPDATE posts SET user_id = %d WHERE id = ?", b.ID)},
		{"delete", "DELETE FROM posts WHERE id = ?"},
	} {
		mGroups, mVersions := logged(migrated, stmt.sql, post)
		gGroups, gVersions := logged(generated, stmt.sql, post)
		check(stmt.name, mGroups, mVersions, gGroups, gVersions)
		if len(gGroups) == 0 {
			t.Errorf("%s logged nothing", stmt.name)
		}
	}
}

// ApplyTriggers refuses, before creating anything, what would make every
// later write to the table fail: a column that does not exist, a name made
// of a column that may be NULL, or triggers that exist already.
func TestApplyTriggersChecksTheSchemaFirst(t *testing.T) {
	startServer(t, testConfig(t)) // migrated: invalidation_log exists
	ctx := context.Background()
	if err := primary.Exec(ctx, "DROP TABLE IF EXISTS edgecache.notes",
		`CREATE TABLE edgecache.notes (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
			topic_id BIGINT UNSIGNED NULL, version BIGINT UNSIGNED NOT NULL DEFAULT 1)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Exec(ctx, "DROP TABLE edgecache.notes") })
	db := openDB(t, primary)
	for spec, complaint := range map[string]string{
		"note/{id}=revision":              "notes has no column revision",
		"note/{ident}=version":            "notes has no column ident",
		"topic/{topic_id}/notes=version":  "notes.topic_id may be NULL",
		"note/{id}=users.notes_version":   "users has no column notes_version",
		"note/{id}=topics.notes_version":  "topics has no column id",
		"note/{id}=version,x/{id}=nope":   "notes has no column nope",
		"note/{id}=version,note/{id}=ver": "notes has no column ver",
	} {
		groups, err := ParseTriggerGroups(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ApplyTriggers(ctx, db, "notes", groups); err == nil || !strings.Contains(err.Error(), complaint) {
			t.Errorf("%q: %v, want an error saying %q", spec, err, complaint)
		}
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_TABLE = 'notes'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused specifications left %d triggers (%v)", n, err)
	}
	groups, _ := ParseTriggerGroups("note/{id}=version")
	names, err := ApplyTriggers(ctx, db, "notes", groups)
	if err != nil || len(names) != 4 {
		t.Fatalf("created %v, %v", names, err)
	}
	if _, err := ApplyTriggers(ctx, db, "notes", groups); err == nil || !strings.Contains(err.Error(), "notes_version exists already") {
		t.Fatalf("applied twice: %v", err)
	}
}
