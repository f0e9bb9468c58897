package origin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
)

// database is the origin's view of MySQL: a primary for writes and fresh
// reads, and replicas, taken round-robin, for every other read.
type database struct {
	primary  *sql.DB
	replicas []*readReplica
	next     atomic.Uint64 // round-robin position over replicas
	timeout  time.Duration // per read, per write transaction, per ping
	downFor  time.Duration // how long a failed replica is skipped before a ping
	closing  chan struct{} // closed by close: background pings stop
	metrics  *serverMetrics
	log      *zap.Logger
}

// readReplica is one read replica. A replica that fails a read, most often by
// not answering within the query timeout, is marked down: reads pass it
// over, so that a hung replica costs one timeout rather than one per read,
// and a background ping every downFor puts it back once it answers.
type readReplica struct {
	name  string // replica1, replica2, ...: in metrics and logs
	db    *sql.DB
	down  atomic.Bool
	skips *metrics.Counter // reads that passed it over while down
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
	d := &database{timeout: cfg.QueryTimeout, downFor: cfg.ReplicaDownFor, closing: make(chan struct{}), metrics: m, log: log}
	var err error
	if d.primary, err = open(cfg.MySQLDSN); err != nil {
		return nil, fmt.Errorf("primary: %w", err)
	}
	for i, dsn := range cfg.ReplicaDSNs {
		db, err := open(dsn)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("replica %d: %w", i+1, err)
		}
		d.replicas = append(d.replicas, &readReplica{name: fmt.Sprintf("replica%d", i+1), db: db})
	}
	m.watchPool("primary", d.primary)
	for _, r := range d.replicas {
		m.watchPool(r.name, r.db)
		r.skips = m.watchReplica(r.name, &r.down)
	}
	return d, nil
}

func (d *database) close() {
	close(d.closing)
	if d.primary != nil {
		d.primary.Close()
	}
	for _, r := range d.replicas {
		r.db.Close()
	}
}

// read runs query against a replica, or against the primary when fresh is
// set (the caller must see the latest commit), no replica is configured or
// every replica is down. A replica that fails — down, hung, unreachable,
// behind on the schema — costs one retry on the primary, not an error, and
// is passed over until it answers a ping. So does a replica that finds no
// row (sql.ErrNoRows), without being marked down: a lagging replica may
// lack a row whose creation was already acknowledged, and its 404 would
// contradict that write. Only the primary's "no row" is answered as one.
func (d *database) read(ctx context.Context, fresh bool, query func(ctx context.Context, db *sql.DB) error) error {
	var r *readReplica
	if !fresh {
		r = d.pickReplica()
	}
	if r == nil {
		return d.readFrom(ctx, d.primary, "primary", query)
	}
	err := d.readFrom(ctx, r.db, "replica", query)
	switch {
	case err == nil || ctx.Err() != nil:
		return err
	case errors.Is(err, sql.ErrNoRows):
		d.metrics.replicaNoRows.Inc()
	default:
		d.metrics.replicaFallbacks.Inc()
		d.markDown(r, err)
	}
	return d.readFrom(ctx, d.primary, "primary", query)
}

// pickReplica takes the replicas round-robin, passing over those marked
// down; nil when there are none or every one is down.
func (d *database) pickReplica() *readReplica {
	n := uint64(len(d.replicas))
	start := d.next.Add(1)
	for i := range n {
		r := d.replicas[(start+i)%n]
		if !r.down.Load() {
			return r
		}
		r.skips.Inc()
	}
	return nil
}

// markDown passes r over from now on, unless it already is, and starts
// pinging it in the background.
func (d *database) markDown(r *readReplica, err error) {
	if !r.down.CompareAndSwap(false, true) {
		return
	}
	d.log.Warn("replica read failed; reads pass the replica over until it answers a ping",
		zap.String("replica", r.name), zap.Duration("ping_every", d.downFor), zap.Error(err))
	go d.ping(r)
}

// ping pings a replica marked down every downFor, each ping bounded by the
// query timeout, until it answers, and then puts it back in the rotation.
// It ends when the database is closed.
func (d *database) ping(r *readReplica) {
	tick := time.NewTicker(d.downFor)
	defer tick.Stop()
	for {
		select {
		case <-d.closing:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
		err := r.db.PingContext(ctx)
		cancel()
		if err == nil {
			r.down.Store(false)
			d.log.Info("replica answers again; reads use it", zap.String("replica", r.name))
			return
		}
	}
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

// pingPrimary reports whether the primary answers; /readyz uses it.
// Replicas are not required: reads fall back to the primary.
func (d *database) pingPrimary(ctx context.Context) error {
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
