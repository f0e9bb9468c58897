package origin

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"time"
)

// user is a users row as GET /v1/users/{id} shows it; the email and token
// hash stay private.
type user struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	PostCount int64     `json:"post_count"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	version   int64     // group user/{id}
}

// createUser inserts a user with versions 1 and returns the stored row; a
// trigger logs user/{id}=1. A taken email fails with MySQL error 1062.
func (d *database) createUser(ctx context.Context, name, email string, tokenHash []byte) (user, error) {
	var u user
	err := d.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users
			(name, email, token_hash, post_count, version, posts_version, created_at, updated_at)
			VALUES (?, ?, ?, 0, 1, 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`, name, email, tokenHash)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		return scanUser(tx.QueryRowContext(ctx, selectUser, id), &u)
	})
	return u, err
}

const selectUser = `SELECT id, name, post_count, created_at, updated_at, version FROM users WHERE id = ?`

func scanUser(row *sql.Row, u *user) error {
	return row.Scan(&u.ID, &u.Name, &u.PostCount, &u.CreatedAt, &u.UpdatedAt, &u.version)
}

// getUser reads a user; sql.ErrNoRows when there is none. It reads the
// columns of selectUser as scanUser does, from the driver's values.
func (d *database) getUser(ctx context.Context, fresh bool, id int64) (user, error) {
	var u user
	err := d.read(ctx, fresh, func(ctx context.Context, db *sql.DB) error {
		return queryRow(ctx, db, selectUser, []driver.NamedValue{{Ordinal: 1, Value: id}}, func(values []driver.Value) error {
			c := columns{values: values}
			u = user{ID: c.int64(0), Name: c.string(1), PostCount: c.int64(2),
				CreatedAt: c.time(3), UpdatedAt: c.time(4), version: c.int64(5)}
			return c.err
		})
	})
	return u, err
}
