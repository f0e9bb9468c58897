package invalidator

import (
	"database/sql"
	"errors"
	"sync"

	_ "github.com/go-sql-driver/mysql" // the driver INVALIDATOR_MYSQL_DSN is for
	"go.uber.org/zap"

	"edgecache/proxy/clock"
)

// Mover moves a group forward in memcached so that no proxy trusts an entry
// built before the move; version is the origin's version of the group after
// the change (0 unknown). Implemented by *store.Store (edgecache/proxy/store).
//
// FlushAll empties every memcached node, so that every group is created
// again with a new incarnation and every lease holder loses its lease: what
// a schema change the triggers cannot log needs (see doc.go).
type Mover interface {
	Move(group string, version uint64) error
	FlushAll() error
}

// Invalidator applies invalidation_log to memcached while it leads, and
// stands by while another instance does. Create it with New, run it with
// Run; the other methods are safe to call at any time.
type Invalidator struct {
	cfg    Config
	mover  Mover
	notify func(groups []string) error // tells the lease holders (package lease); nil: no one to tell
	log    *zap.Logger
	clock  clock.Clock
	db     *sql.DB
	m      *metricSet

	mu        sync.Mutex
	leading   bool
	connected bool   // the last statement on a pinned connection succeeded
	dbErr     error  // why not connected
	holder    int64  // the lock holder's connection id, as this standby last saw it
	maxID     uint64 // highest log id applied by this instance
	rows      uint64 // log rows applied (moved and deleted) by this instance
	schemas   uint64 // schema changes invalidated by this instance
	schemaBad string // why schema changes may not be invalidated now (leader only); "" when fine
	// the memcached nodes as the decider's last round saw them (leader only)
	memcachedHealth []nodeHealth
	changed         chan struct{}
}

// New checks cfg and opens the database pool; it does not connect (Run
// does, and keeps trying).
func New(cfg Config, mover Mover, log *zap.Logger) (*Invalidator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := sql.Open("mysql", cfg.MySQLDSN)
	if err != nil {
		return nil, err
	}
	// One pinned session at a time, room for its successor while the old
	// one closes, and one for the admin's memcached membership commands.
	db.SetMaxOpenConns(3)
	inv := newInvalidator(cfg, mover, log, clock.Real)
	inv.db = db
	return inv, nil
}

func newInvalidator(cfg Config, mover Mover, log *zap.Logger, c clock.Clock) *Invalidator {
	inv := &Invalidator{cfg: cfg, mover: mover, log: log, clock: c, changed: make(chan struct{})}
	inv.m = newMetricSet(func() float64 {
		if inv.Leading() {
			return 1
		}
		return 0
	})
	return inv
}

// Applier is the leader's apply loop a round at a time, over any Log, for
// the fault simulator (proxy/simulate_test.go), which runs rounds at the
// points of its schedule on its own clock. notify tells the lease holders
// (nil: none).
type Applier struct {
	a *applier
}

// NewApplier is an applier with cfg's batch, concurrency and retry
// settings.
func NewApplier(cfg Config, mover Mover, notify func(groups []string) error, c clock.Clock, log *zap.Logger) *Applier {
	inv := newInvalidator(cfg, mover, log, c)
	inv.notify = notify
	return &Applier{newApplier(inv)}
}

// Round reads one batch of l, moves its groups, tells the holders and
// deletes the rows that moved; more says another batch is waiting.
func (ap *Applier) Round(l Log) (more bool, err error) { return ap.a.round(l) }

// Close closes the database pool. Call it after Run has returned.
func (inv *Invalidator) Close() error { return inv.db.Close() }

// Leading reports whether this instance holds the lock and applies the log.
func (inv *Invalidator) Leading() bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.leading
}

// Applied returns the highest log id this instance applied and how many
// rows it applied (moved and deleted) since it started.
func (inv *Invalidator) Applied() (maxID, rows uint64) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.maxID, inv.rows
}

// Changed returns a channel that is closed at the next change of status
// (leading, connected to the database, who holds the lock, Applied), so
// that a caller can wait for one without polling: take the channel, check,
// then wait on it.
func (inv *Invalidator) Changed() <-chan struct{} {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.changed
}

// wakeLocked wakes Changed's waiters; inv.mu is held.
func (inv *Invalidator) wakeLocked() {
	close(inv.changed)
	inv.changed = make(chan struct{})
}

func (inv *Invalidator) recordApplied(ids []uint64) {
	inv.mu.Lock()
	for _, id := range ids {
		inv.maxID = max(inv.maxID, id)
	}
	inv.rows += uint64(len(ids))
	inv.m.appliedID.Set(float64(inv.maxID))
	inv.wakeLocked()
	inv.mu.Unlock()
	inv.m.rowsApplied.Add(len(ids))
}

// SchemaChangesApplied is how many schema changes this instance has
// invalidated (memcached flushed, the leases waited out, the new state
// recorded in invalidation_ddl) since it started.
func (inv *Invalidator) SchemaChangesApplied() uint64 {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.schemas
}

func (inv *Invalidator) recordSchemaApplied() {
	inv.mu.Lock()
	inv.schemas++
	inv.wakeLocked()
	inv.mu.Unlock()
	inv.m.ddlApplied.Inc()
}

// setSchemaProblem records why schema changes may not be invalidated now,
// for /readyz; "" when nothing is wrong.
func (inv *Invalidator) setSchemaProblem(why string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.schemaBad != why {
		inv.schemaBad = why
		inv.wakeLocked()
	}
}

// setLeading records a change of leadership; why says why it was lost.
func (inv *Invalidator) setLeading(leading bool, why error) {
	inv.mu.Lock()
	if inv.leading == leading {
		inv.mu.Unlock()
		return
	}
	inv.leading, inv.holder = leading, 0
	inv.wakeLocked()
	inv.mu.Unlock()
	if leading {
		inv.m.leaderGained.Inc()
		inv.m.lockHolder.Set(0)
		inv.log.Info("leading: applying invalidation_log", zap.String("lock", inv.cfg.LockName))
	} else {
		inv.m.leaderLost.Inc()
		inv.m.backlog.Set(0) // a standby sees no backlog; the leader reports it
		inv.m.triggersMissing.Set(0)
		inv.setSchemaProblem("")
		level := zap.WarnLevel
		if errors.Is(why, errStopping) {
			level = zap.InfoLevel
		}
		inv.log.Log(level, "stepped down", zap.String("lock", inv.cfg.LockName), zap.Error(why))
	}
}

// setConnected records whether the database answers on a pinned
// connection, logging only when that changes.
func (inv *Invalidator) setConnected(err error) {
	inv.mu.Lock()
	was, hadErr := inv.connected, inv.dbErr != nil
	inv.connected, inv.dbErr = err == nil, err
	if inv.connected != was || (err != nil) != hadErr {
		inv.wakeLocked()
	}
	inv.mu.Unlock()
	switch {
	case err == nil && !was:
		inv.log.Info("database session open")
	case err != nil && was:
		inv.m.sessionErrors.Inc()
		inv.log.Warn("database session lost; reconnecting", zap.Error(err))
	case err != nil:
		inv.m.sessionErrors.Inc()
	}
}

// standBy records who holds the lock, logging only when that changes.
func (inv *Invalidator) standBy(holder int64) {
	inv.mu.Lock()
	was := inv.holder
	inv.holder = holder
	if holder != was {
		inv.wakeLocked()
	}
	inv.mu.Unlock()
	inv.m.lockHolder.Set(float64(holder))
	if holder != was {
		inv.log.Info("standing by: another session holds the lock", zap.String("lock", inv.cfg.LockName), zap.Int64("holder_connection_id", holder))
	}
}
