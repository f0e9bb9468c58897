package invalidator

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// session is one pinned database connection: the one that contends for the
// lock and, once it holds it, carries every statement of the leader, so that
// no statement can succeed after the lock was lost with the connection.
//
// database/sql runs one statement at a time on a Conn, but a query's rows
// are read after the call returns: the mutex keeps the leader's lock checks
// from interleaving with the apply loop's statements.
//
// Statements are bounded by the timeout, not cancelled by the caller's
// context: the driver cancels a statement by closing the connection, which
// would turn a clean stop (release the lock, then close) into a dropped
// session. Callers check their context between statements.
type session struct {
	mu      sync.Mutex
	conn    *sql.Conn
	lock    string
	timeout time.Duration // per statement: no answer within the server's own wait_timeout means the session is gone
}

// openSession pins a connection and sets up its session:
//   - a short wait_timeout, so that the server drops it, and frees the lock,
//     if this process stops talking;
//   - a short innodb_lock_wait_timeout, so that a delete that meets another
//     instance's (during an overlap) fails fast as a server error instead of
//     outliving the statement deadline and the connection with it;
//   - READ COMMITTED, so that no statement here ever takes a gap lock that
//     would hold up the origin's inserts into the log.
func openSession(ctx context.Context, db *sql.DB, lock string, waitTimeout time.Duration) (*session, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, lock: lock, timeout: waitTimeout}
	err = s.exec("SET SESSION wait_timeout = ?, SESSION innodb_lock_wait_timeout = 1", int64(waitTimeout/time.Second))
	if err == nil {
		err = s.exec("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close ends the session on the server. The connection is discarded, never
// returned to the pool: a pooled connection would keep the lock (and the
// short wait_timeout) for whoever borrows it next.
func (s *session) close() {
	s.conn.Raw(func(any) error { return driver.ErrBadConn })
	s.conn.Close()
}

// tryLock takes the lock if it is free. When it is not, holder is the
// connection id of the session that has it (0 if it was freed meanwhile).
func (s *session) tryLock() (got bool, holder int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	var res, who sql.NullInt64
	err = s.conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0), IS_USED_LOCK(?)", s.lock, s.lock).Scan(&res, &who)
	if err != nil {
		return false, 0, err
	}
	if !res.Valid { // GET_LOCK returns NULL on an error such as being killed
		return false, 0, errors.New("GET_LOCK returned NULL")
	}
	return res.Int64 == 1, who.Int64, nil
}

// holdsLock checks that this session still holds the lock. It is the
// leader's ping: it fails when the connection is gone.
func (s *session) holdsLock() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	var mine sql.NullBool
	err := s.conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", s.lock).Scan(&mine)
	return mine.Valid && mine.Bool, err
}

// release frees the lock ahead of closing, so that a standby can take over
// without waiting for the server to notice the disconnect.
func (s *session) release() error {
	return s.exec("DO RELEASE_LOCK(?)", s.lock)
}

// ReadBatch reads up to n rows with ids above after, in id order.
func (s *session) ReadBatch(after uint64, n int) ([]Row, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	rows, err := s.conn.QueryContext(ctx, "SELECT id, grp, version, TIMESTAMPDIFF(MICROSECOND, created_at, NOW(6)) "+
		"FROM invalidation_log WHERE id > ? ORDER BY id LIMIT ?", after, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var batch []Row
	for rows.Next() {
		var r Row
		var ageMicros int64
		if err := rows.Scan(&r.ID, &r.Group, &r.Version, &ageMicros); err != nil {
			return nil, err
		}
		r.Age = time.Duration(max(ageMicros, 0)) * time.Microsecond // a clock stepped back: not negative
		batch = append(batch, r)
	}
	return batch, rows.Err()
}

// DeleteRows deletes the rows with the given ids, and only those: a row with
// a lower id may have committed since the batch was read, and it has not
// been applied.
//
// It must also touch no other row. The log holds the uncommitted rows of
// transactions in flight, and "DELETE ... WHERE id IN (...)" on a table this
// small is planned as a full scan, which waits on their row locks (up to
// innodb_lock_wait_timeout) and, under REPEATABLE READ, gap-locks the table
// against the origin's inserts meanwhile. Joining from the list of ids
// (STRAIGHT_JOIN fixes that order) makes each deletion a primary-key
// lookup of a row that is committed and ours.
func (s *session) DeleteRows(ids []uint64) error {
	var q strings.Builder
	q.WriteString("DELETE l FROM (SELECT ? AS id")
	for range ids[1:] {
		q.WriteString(" UNION ALL SELECT ?")
	}
	q.WriteString(") AS applied STRAIGHT_JOIN invalidation_log AS l ON l.id = applied.id")
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.exec(q.String(), args...)
}

func (s *session) exec(query string, args ...any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_, err := s.conn.ExecContext(ctx, query, args...)
	return err
}

// serverAnswered tells an error the server sent (a missing table, a lock
// wait timeout: the session is alive and still holds the lock) from a lost
// connection, after which the lock must be presumed lost.
func serverAnswered(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number != erConnectionKilled
}

// erConnectionKilled is MariaDB's "Connection was killed" (KILL): the
// server ends the session right after sending it.
const erConnectionKilled = 1927
