package origin

import (
	"database/sql"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestIfMatchRace sends 20 PUTs with the same If-Match at once: exactly one
// may win; the rest must get 412 and change nothing.
func TestIfMatchRace(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u := ts.newUser()
	p := ts.newPost(u, "start")
	const writers = 20

	var wg sync.WaitGroup
	statuses := make([]int, writers)
	bodies := make([]string, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			bodies[i] = fmt.Sprint("writer ", i)
			r := ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), jsonPost(bodies[i]),
				"Authorization", "Bearer "+u.Token, "If-Match", `"1"`)
			statuses[i] = r.status
		}()
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won", winner, i)
			}
			winner = i
		case http.StatusPreconditionFailed:
		default:
			t.Fatalf("writer %d got %d", i, s)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	var body string
	var version int64
	if err := db.QueryRow("SELECT body, version FROM posts WHERE id = ?", p.ID).Scan(&body, &version); err != nil {
		t.Fatal(err)
	}
	if body != bodies[winner] || version != 2 {
		t.Fatalf("post is %q at version %d; the winner wrote %q", body, version, bodies[winner])
	}
	// Only the winner moved the list's version: 1 at creation, +1 create, +1 edit.
	wantRow(t, db, u.ID, 1, 2, 3)
}

// deadlocks is InnoDB's count of deadlocks since the server started.
func deadlocks(t testing.TB, db *sql.DB) int64 {
	t.Helper()
	var name string
	var n int64
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVersionsMoveWithData writes concurrently while a reader checks, in
// single statements (each one consistent snapshot), that post_count always
// equals the number of posts and that versions only grow. Moving counters
// and versions in a separate transaction from the rows would show up here
// as a snapshot where they disagree. No write may deadlock: the triggers
// lock the rows in the origin's order (a retried deadlock would still
// succeed, so the test counts them).
func TestVersionsMoveWithData(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u := ts.newUser()
	deadlocksBefore := deadlocks(t, db)

	stop := make(chan struct{})
	readerDone := make(chan error)
	go func() {
		var lastVersion, lastPostsVersion int64
		checks := 0
		for {
			select {
			case <-stop:
				if checks == 0 {
					readerDone <- fmt.Errorf("reader made no checks")
					return
				}
				readerDone <- nil
				return
			default:
			}
			var count, posts, version, postsVersion int64
			err := db.QueryRow(`SELECT u.post_count, (SELECT COUNT(*) FROM posts p WHERE p.user_id = u.id),
				u.version, u.posts_version FROM users u WHERE u.id = ?`, u.ID).Scan(&count, &posts, &version, &postsVersion)
			if err != nil {
				readerDone <- err
				return
			}
			if count != posts || version < lastVersion || postsVersion < lastPostsVersion {
				readerDone <- fmt.Errorf("snapshot: post_count %d, posts %d, version %d (was %d), posts_version %d (was %d)",
					count, posts, version, lastVersion, postsVersion, lastPostsVersion)
				return
			}
			lastVersion, lastPostsVersion = version, postsVersion
			checks++
		}
	}()

	const writers, rounds = 4, 10
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				p := ts.newPost(u, "churn")
				ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), jsonPost("edited"), "Authorization", "Bearer "+u.Token).expect(t, http.StatusOK)
				ts.do("DELETE", fmt.Sprintf("/v1/posts/%d", p.ID), "", "Authorization", "Bearer "+u.Token).expect(t, http.StatusNoContent)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	// Each round: create moves version and posts_version, edit moves
	// posts_version, delete moves both again.
	n := int64(writers * rounds)
	wantRow(t, db, u.ID, 0, 1+2*n, 1+3*n)
	if d := deadlocks(t, db) - deadlocksBefore; d != 0 {
		t.Errorf("%d deadlocks among the writes", d)
	}
}
