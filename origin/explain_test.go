package origin

import (
	"database/sql"
	"strings"
	"testing"
)

// TestListQueryPlan checks that listing a user's posts walks the
// (user_id, id DESC) index instead of sorting all of the user's posts. (The
// outer query sorts at most limit+1 rows.)
func TestListQueryPlan(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u, other := ts.newUser(), ts.newUser()
	// Enough rows of two users that the optimizer's choice means something.
	for _, id := range []int64{u.ID, other.ID} {
		values := strings.TrimSuffix(strings.Repeat("(?, 'bulk', 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)),", 500), ",")
		args := make([]any, 500)
		for i := range args {
			args[i] = id
		}
		if _, err := db.Exec("INSERT INTO posts (user_id, body, version, created_at, updated_at) VALUES "+values, args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("ANALYZE TABLE users, posts"); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`EXPLAIN SELECT u.posts_version, u.updated_at,
			p.id, p.user_id, p.body, p.version, p.created_at, p.updated_at
		FROM users u LEFT JOIN (
			SELECT id, user_id, body, version, created_at, updated_at FROM posts
			WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?) p ON TRUE
		WHERE u.id = ?
		ORDER BY p.id DESC`, u.ID, int64(1<<62), 21, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var line []string
		for i, c := range cols {
			line = append(line, c+"="+vals[i].String)
		}
		plan = append(plan, strings.Join(line, " "))
	}
	text := strings.Join(plan, "\n")
	t.Log(text)
	var inner string
	for _, line := range plan {
		if strings.Contains(line, "table=posts ") {
			inner = line
		}
	}
	if !strings.Contains(inner, "key=posts_user_newest") || strings.Contains(inner, "filesort") {
		t.Fatalf("list query does not walk posts_user_newest:\n%s", text)
	}
}
