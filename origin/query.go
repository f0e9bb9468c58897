package origin

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// The reads of the API (a post, a page of posts, a user) call the driver
// through sql.Conn.Raw rather than DB.QueryContext. For a query whose
// context can end, database/sql's Rows start a goroutine to watch the
// context (the driver already watches it on its own), and Scan converts
// each BIGINT UNSIGNED to int64 by printing and parsing it: together 4 to
// 9 µs of CPU of a one-row read's 20 to 24 (measured on 2 shared cores),
// and 10 allocations of a GET of a post, 70 of a page of 8. What
// database/sql does for a query and matters here is kept: a connection
// found bad before the query was sent is discarded and the query tried
// again (up to maxQueryAttempts connections, as database/sql does), and a
// query the driver will not interpolate (driver.ErrSkip: interpolateParams
// off in the DSN) is prepared, run and closed.

// maxQueryAttempts is database/sql's: two connections from the pool, then
// a new one.
const maxQueryAttempts = 3

// queryRow runs a SELECT on db and calls row with its first row's values
// (as the driver gives them, valid during the call only); sql.ErrNoRows
// when it has none.
func queryRow(ctx context.Context, db *sql.DB, query string, args []driver.NamedValue, row func(values []driver.Value) error) error {
	found := false
	err := queryRows(ctx, db, query, args, func(values []driver.Value) error {
		if found {
			return nil
		}
		found = true
		return row(values)
	})
	if err == nil && !found {
		return sql.ErrNoRows
	}
	return err
}

// queryRows runs a SELECT on db and calls row with each row's values (as
// the driver gives them, valid during the call only), stopping at row's
// first error.
func queryRows(ctx context.Context, db *sql.DB, query string, args []driver.NamedValue, row func(values []driver.Value) error) error {
	var err error
	for range maxQueryAttempts {
		delivered := false
		err = queryRowsOnce(ctx, db, query, args, func(values []driver.Value) error {
			delivered = true
			return row(values)
		})
		if delivered || !errors.Is(err, driver.ErrBadConn) {
			return err
		}
	}
	return err
}

// queryRowsOnce is queryRows on one connection. An error that is
// driver.ErrBadConn makes Raw discard the connection.
func queryRowsOnce(ctx context.Context, db *sql.DB, query string, args []driver.NamedValue, row func(values []driver.Value) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		rows, closeStmt, err := driverQuery(ctx, dc, query, args)
		if err != nil {
			return err
		}
		defer closeStmt()
		err = readRows(rows, row)
		if closeErr := rows.Close(); err == nil {
			err = closeErr
		}
		return err
	})
}

// driverQuery runs query on the driver's connection dc, interpolated by the
// driver, or else as a prepared statement that closeStmt closes.
func driverQuery(ctx context.Context, dc any, query string, args []driver.NamedValue) (rows driver.Rows, closeStmt func() error, err error) {
	noStmt := func() error { return nil }
	queryer, ok := dc.(driver.QueryerContext)
	if !ok {
		return nil, nil, fmt.Errorf("database driver %T cannot query", dc)
	}
	rows, err = queryer.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		return rows, noStmt, err
	}
	preparer, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, nil, fmt.Errorf("database driver %T cannot prepare", dc)
	}
	stmt, err := preparer.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	stmtQueryer, ok := stmt.(driver.StmtQueryContext)
	if !ok {
		stmt.Close()
		return nil, nil, fmt.Errorf("database driver statement %T cannot query", stmt)
	}
	if rows, err = stmtQueryer.QueryContext(ctx, args); err != nil {
		stmt.Close()
		return nil, nil, err
	}
	return rows, stmt.Close, nil
}

// readRows calls row with each row of rows.
func readRows(rows driver.Rows, row func(values []driver.Value) error) error {
	values := make([]driver.Value, len(rows.Columns()))
	for {
		err := rows.Next(values)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := row(values); err != nil {
			return err
		}
	}
}

// columns reads a row's values as the types the API uses, remembering the
// first value that is not one (a schema the code does not expect).
type columns struct {
	values []driver.Value
	err    error
}

// null reports whether column i is NULL.
func (c *columns) null(i int) bool { return c.values[i] == nil }

// int64 reads an integer column: the driver gives int64, or uint64 for a
// BIGINT UNSIGNED.
func (c *columns) int64(i int) int64 {
	switch v := c.values[i].(type) {
	case int64:
		return v
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
	}
	c.fail(i, "an int64")
	return 0
}

// string reads a text column (copied: the driver's bytes are reused).
func (c *columns) string(i int) string {
	switch v := c.values[i].(type) {
	case []byte:
		return string(v)
	case string:
		return v
	}
	c.fail(i, "a string")
	return ""
}

// time reads a DATETIME column (parseTime=true, which Config.Validate
// requires).
func (c *columns) time(i int) time.Time {
	if v, ok := c.values[i].(time.Time); ok {
		return v
	}
	c.fail(i, "a time")
	return time.Time{}
}

func (c *columns) fail(i int, want string) {
	if c.err == nil {
		c.err = fmt.Errorf("column %d: %T %v is not %s", i, c.values[i], c.values[i], want)
	}
}
