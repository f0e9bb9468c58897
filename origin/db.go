package origin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
)

// database is the origin's view of MySQL: a primary for writes and fresh
// reads, and replicas, taken round-robin, for every other read.
type database struct {
	primary  *sql.DB
	replicas []*sql.DB
	next     atomic.Uint64 // round-robin position over replicas
	timeout  time.Duration // per read, per write transaction
	metrics  *serverMetrics
	log      *zap.Logger
}

// openDatabase opens the pools. It does not connect: a replica that is down
// at start-up must not stop the origin, and the primary is reached by the
// migration that follows.
func openDatabase(cfg Config, m *serverMetrics, log *zap.Logger) (*database, error) {
	open := func(dsn string) (*sql.DB, error) {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			return nil, err
		}
		// Open = idle: under steady load every connection stays warm rather
		// than being closed and redialled per burst.
		db.SetMaxOpenConns(cfg.MaxConns)
		db.SetMaxIdleConns(cfg.MaxConns)
		db.SetConnMaxLifetime(cfg.ConnMaxLifetime)
		return db, nil
	}
	d := &database{timeout: cfg.QueryTimeout, metrics: m, log: log}
	var err error
	if d.primary, err = open(cfg.MySQLDSN); err != nil {
		return nil, fmt.Errorf("primary: %w", err)
	}
	for i, dsn := range cfg.ReplicaDSNs {
		replica, err := open(dsn)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("replica %d: %w", i+1, err)
		}
		d.replicas = append(d.replicas, replica)
	}
	m.watchPool("primary", d.primary)
	for i, r := range d.replicas {
		m.watchPool(fmt.Sprintf("replica%d", i+1), r)
	}
	return d, nil
}

func (d *database) close() {
	if d.primary != nil {
		d.primary.Close()
	}
	for _, r := range d.replicas {
		r.Close()
	}
}

// read runs query against a replica, or against the primary when fresh is
// set (the caller must see the latest commit) or no replica is configured.
// A replica that fails — down, unreachable, behind on the schema — costs one
// retry on the primary, not an error. So does a replica that finds no row
// (sql.ErrNoRows): a lagging replica may lack a row whose creation was
// already acknowledged, and its 404 would contradict that write. Only the
// primary's "no row" is answered as one.
func (d *database) read(ctx context.Context, fresh bool, query func(ctx context.Context, db *sql.DB) error) error {
	if fresh || len(d.replicas) == 0 {
		return d.readFrom(ctx, d.primary, "primary", query)
	}
	replica := d.replicas[d.next.Add(1)%uint64(len(d.replicas))]
	err := d.readFrom(ctx, replica, "replica", query)
	switch {
	case err == nil || ctx.Err() != nil:
		return err
	case errors.Is(err, sql.ErrNoRows):
		d.metrics.replicaNoRows.Inc()
	default:
		d.metrics.replicaFallbacks.Inc()
		d.log.Warn("replica read failed; reading from the primary", zap.Error(err))
	}
	return d.readFrom(ctx, d.primary, "primary", query)
}

func (d *database) readFrom(ctx context.Context, db *sql.DB, target string, query func(ctx context.Context, db *sql.DB) error) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	d.metrics.query(target, "read")
	return query(ctx, db)
}

// maxWriteAttempts bounds the retries of a transaction InnoDB chose as a
// deadlock victim; the victim's work was rolled back, so retrying is safe.
const maxWriteAttempts = 3

// write runs fn in a transaction on the primary and commits it, retrying on
// deadlock. fn's error is returned as is (after rollback).
func (d *database) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := d.writeOnce(ctx, fn)
		if attempt < maxWriteAttempts && mysqlErrorNumber(err) == errDeadlock {
			continue
		}
		return err
	}
}

func (d *database) writeOnce(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	d.metrics.query("primary", "write")
	tx, err := d.primary.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// ping reports whether the primary answers; /readyz uses it. Replicas are
// not required: reads fall back to the primary.
func (d *database) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.primary.PingContext(ctx)
}

// MySQL server error numbers the origin reacts to.
const (
	errDuplicateKey = 1062
	errDeadlock     = 1213
)

func mysqlErrorNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// unavailable reports whether err means the database could not answer —
// down, unreachable, too slow, overloaded, read-only after a failover — as
// opposed to a query the server rejected, which is a bug (500).
func unavailable(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return true // network errors, timeouts, bad connections
	}
	switch me.Number {
	case 1040, // too many connections
		1053, // server shutdown in progress
		1205, // lock wait timeout
		1213, // deadlock, after the retries
		1290, // --read-only
		1792, // read-only transaction
		1836, // read-only mode
		1927, // connection was killed (MariaDB)
		3024: // query execution was interrupted (max_execution_time)
		return true
	}
	return false
}
