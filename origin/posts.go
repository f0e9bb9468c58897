package origin

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"math"
	"time"
)

// post is a posts row as the API shows it.
type post struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"user_id"`
	Body      string    `json:"body"`
	Version   int64     `json:"version"` // group post/{id}
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// authorVersions are the author's group versions after a write, read in the
// write's transaction.
type authorVersions struct {
	user  int64 // user/{id}
	posts int64 // user/{id}/posts
}

const selectPost = `SELECT id, user_id, body, version, created_at, updated_at FROM posts WHERE id = ?`

// readPost reads a post from the row's 6 columns starting at column from,
// in selectPost's order.
func readPost(c *columns, from int) post {
	return post{ID: c.int64(from), UserID: c.int64(from + 1), Body: c.string(from + 2),
		Version: c.int64(from + 3), CreatedAt: c.time(from + 4), UpdatedAt: c.time(from + 5)}
}

// getPost reads a post; sql.ErrNoRows when there is none.
func (d *database) getPost(ctx context.Context, fresh bool, id int64) (post, error) {
	var p post
	err := d.read(ctx, fresh, func(ctx context.Context, db *sql.DB) error {
		return queryRow(ctx, db, selectPost, []driver.NamedValue{{Ordinal: 1, Value: id}}, func(values []driver.Value) error {
			c := columns{values: values}
			p = readPost(&c, 0)
			return c.err
		})
	})
	return p, err
}

// postPage is one page of a user's posts, newest first.
type postPage struct {
	posts        []post
	more         bool      // older posts exist past the page
	postsVersion int64     // user/{id}/posts when the page was read
	lastModified time.Time // the newest updated_at of the user and the page's posts
}

// listPosts reads up to limit of the user's posts with ids below before
// (0: from the newest). One statement reads the list's version and its rows,
// so they come from one snapshot: a version newer than the rows would let a
// cache keep an old list as current. sql.ErrNoRows when the user does not
// exist.
func (d *database) listPosts(ctx context.Context, fresh bool, userID, before int64, limit int) (postPage, error) {
	if before == 0 {
		before = math.MaxInt64
	}
	var page postPage
	err := d.read(ctx, fresh, func(ctx context.Context, db *sql.DB) error {
		page = postPage{}
		found := false
		err := queryRows(ctx, db, `SELECT u.posts_version, u.updated_at,
				p.id, p.user_id, p.body, p.version, p.created_at, p.updated_at
			FROM users u LEFT JOIN (
				SELECT id, user_id, body, version, created_at, updated_at FROM posts
				WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?) p ON TRUE
			WHERE u.id = ?
			ORDER BY p.id DESC`,
			[]driver.NamedValue{{Ordinal: 1, Value: userID}, {Ordinal: 2, Value: before}, {Ordinal: 3, Value: int64(limit + 1)}, {Ordinal: 4, Value: userID}},
			func(values []driver.Value) error {
				found = true
				c := columns{values: values}
				page.postsVersion = c.int64(0)
				page.lastModified = later(page.lastModified, c.time(1))
				switch {
				case c.null(2): // the user has no posts in range
				case len(page.posts) == limit:
					page.more = true
				default:
					p := readPost(&c, 2)
					page.posts = append(page.posts, p)
					page.lastModified = later(page.lastModified, p.UpdatedAt)
				}
				return c.err
			})
		if err == nil && !found {
			return sql.ErrNoRows
		}
		return err
	})
	return page, err
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// createPost inserts a post; in the same transaction the database's
// triggers (migrations/0002_invalidation_log.sql) move the author's
// post_count, user version and posts version and log the groups.
// sql.ErrNoRows when the user does not exist.
func (d *database) createPost(ctx context.Context, userID int64, body string) (post, authorVersions, error) {
	var p post
	var v authorVersions
	err := d.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Locking the author first makes concurrent writes to one user's
		// posts queue here, in one order: the trigger's update of this row
		// then never waits.
		var found int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE id = ? FOR UPDATE", userID).Scan(&found); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO posts (user_id, body, created_at, updated_at)
			VALUES (?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`, userID, body)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		return readBack(ctx, tx, id, &p, &v)
	})
	return p, v, err
}

// readBack reads, inside a write's transaction, the post as written and its
// author's new versions.
func readBack(ctx context.Context, tx *sql.Tx, postID int64, p *post, v *authorVersions) error {
	return tx.QueryRowContext(ctx, `SELECT p.id, p.user_id, p.body, p.version, p.created_at, p.updated_at,
			u.version, u.posts_version
		FROM posts p JOIN users u ON u.id = p.user_id WHERE p.id = ?`, postID).
		Scan(&p.ID, &p.UserID, &p.Body, &p.Version, &p.CreatedAt, &p.UpdatedAt, &v.user, &v.posts)
}

// lockPost locks a post for a change by userID and checks, in this order,
// that it exists (errNotFound), belongs to userID (errForbidden) and that
// its version satisfies cond (errPreconditionFailed). The row lock makes
// concurrent changes with the same If-Match take turns: the first moves the
// version, the rest then fail the check.
func lockPost(ctx context.Context, tx *sql.Tx, userID, postID int64, cond precondition) (version int64, err error) {
	var owner int64
	err = tx.QueryRowContext(ctx, "SELECT user_id, version FROM posts WHERE id = ? FOR UPDATE", postID).Scan(&owner, &version)
	switch {
	case err == sql.ErrNoRows:
		return 0, errNotFound
	case err != nil:
		return 0, err
	case owner != userID:
		return 0, errForbidden
	case !cond.allows(version):
		return 0, errPreconditionFailed
	}
	return version, nil
}

// updatePost replaces a post's body; the triggers move its version and
// updated_at and the author's posts version in the same transaction.
func (d *database) updatePost(ctx context.Context, userID, postID int64, body string, cond precondition) (post, authorVersions, error) {
	var p post
	var v authorVersions
	err := d.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := lockPost(ctx, tx, userID, postID, cond); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE posts SET body = ? WHERE id = ?", body, postID); err != nil {
			return err
		}
		return readBack(ctx, tx, postID, &p, &v)
	})
	return p, v, err
}

// deletePost deletes a post; the triggers move the author's post_count,
// user version and posts version in the same transaction. It returns the
// version the post's group moves to (its last version + 1, as the trigger
// logs it), so that caches holding the post see it change.
func (d *database) deletePost(ctx context.Context, userID, postID int64, cond precondition) (int64, authorVersions, error) {
	var postVersion int64
	var v authorVersions
	err := d.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		version, err := lockPost(ctx, tx, userID, postID, cond)
		if err != nil {
			return err
		}
		postVersion = version + 1
		if _, err := tx.ExecContext(ctx, "DELETE FROM posts WHERE id = ?", postID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT version, posts_version FROM users WHERE id = ?", userID).Scan(&v.user, &v.posts)
	})
	return postVersion, v, err
}
