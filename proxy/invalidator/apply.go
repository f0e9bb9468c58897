package invalidator

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"edgecache/proxy/store"
)

// Log is invalidation_log as the apply loop reads it: the leader's locked
// session in production, a model of the table in the fault simulator
// (proxy/simulate_test.go).
type Log interface {
	// ReadBatch reads up to n rows with ids above after, in id order.
	ReadBatch(after uint64, n int) ([]Row, error)
	// DeleteRows deletes the rows with these ids, and only those.
	DeleteRows(ids []uint64) error
}

// Row is one row of invalidation_log.
type Row struct {
	ID      uint64
	Group   string
	Version uint64
	Age     time.Duration // since the row was inserted, by the database's clock
}

// applier is the leader's apply loop: read a batch, move its groups, delete
// the rows whose group moved (see doc.go for why rows are deleted instead
// of a position kept). A new one starts with every term of leadership.
type applier struct {
	inv *Invalidator
	ddl *ddlWatch // schema changes, checked between rounds

	cursor uint64 // highest id read in this sweep; 0 at the start of one
	sweep  uint64 // sweeps begun, to tell which retry entries this one saw
	seen   int    // rows read in this sweep: the backlog

	retry   map[string]*retry // groups whose move failed, by name
	failing bool              // moves are failing: logged once per change

	dbDelay   time.Duration // wait after a statement the server refused
	dbFailing bool          // statements are failing: logged once per change
}

// retry is a group whose move failed: its rows stay in the log and it is
// not moved again before at.
type retry struct {
	at    time.Time
	delay time.Duration
	sweep uint64 // the last sweep that read one of its rows
}

// move is one group of a batch: the highest version its rows name, and the
// rows it covers.
type move struct {
	group   string
	version uint64
	ids     []uint64
	ages    []time.Duration // each row's age when the batch was read
	err     error
	movedAt time.Time
}

func newApplier(inv *Invalidator) *applier {
	return &applier{inv: inv, ddl: newDDLWatch(inv), retry: map[string]*retry{}}
}

// run applies batches until ctx is done or the session fails. A statement
// the server refused (a missing table, a lock wait timeout) leaves the
// session, and the lock, intact: it is retried with backoff. Every
// DDLInterval, between rounds, it looks for schema changes (ddl.go).
func (a *applier) run(ctx context.Context, s *session) error {
	for {
		if a.ddl.due(time.Now()) {
			if err := a.ddl.check(s); err != nil {
				return err
			}
		}
		more, err := a.round(s)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !serverAnswered(err):
			return err
		case err != nil:
			a.dbRefused(err)
			if !sleep(ctx, a.dbDelay) {
				return ctx.Err()
			}
		case more:
			a.dbAnswered()
		default:
			a.dbAnswered()
			if !sleep(ctx, a.inv.cfg.PollInterval) {
				return ctx.Err()
			}
		}
	}
}

// round reads one batch, moves its groups and deletes the rows that moved.
// more says another batch is waiting: this one came back full and was not
// all waiting out a backoff.
func (a *applier) round(s Log) (more bool, err error) {
	batch, err := s.ReadBatch(a.cursor, a.inv.cfg.Batch)
	if err != nil {
		return false, err
	}
	readAt := a.inv.clock.Now()
	a.seen += len(batch)
	if float64(a.seen) > a.inv.m.backlog.Get() {
		a.inv.m.backlog.Set(float64(a.seen))
	}
	moves := a.plan(batch, readAt)
	full := len(batch) == a.inv.cfg.Batch
	if full {
		a.cursor = batch[len(batch)-1].ID
	} else {
		a.endSweep()
	}
	a.moveAll(moves)
	a.notifyHolders(moves)
	var done []uint64
	var firstFailed *move
	for _, mv := range moves {
		if mv.err != nil {
			a.moveFailed(mv)
			if firstFailed == nil {
				firstFailed = mv
			}
			continue
		}
		a.inv.m.groupsMoved.Inc()
		delete(a.retry, mv.group)
		done = append(done, mv.ids...)
		for _, age := range mv.ages {
			a.inv.m.delay.Update((age + mv.movedAt.Sub(readAt)).Seconds())
		}
	}
	a.noteFailing(firstFailed)
	if len(moves) == 0 {
		return false, nil
	}
	if len(done) == 0 {
		return full, nil
	}
	// The batch in hand is finished even when the leader is stopping: its
	// groups moved, and deleting their rows spares the next leader moving
	// them again. A lost connection fails this at once.
	if err := s.DeleteRows(done); err != nil {
		return false, err
	}
	a.inv.recordApplied(done)
	return full, nil
}

// endSweep starts the next sweep from the lowest id, and forgets the retry
// entries of groups the finished sweep did not read: their rows are gone
// (another instance applied them during an overlap).
func (a *applier) endSweep() {
	a.inv.m.backlog.Set(float64(a.seen))
	for g, r := range a.retry {
		if r.sweep < a.sweep {
			delete(a.retry, g)
		}
	}
	a.cursor, a.seen = 0, 0
	a.sweep++
}

// plan groups a batch by group, keeping each group's highest version, and
// leaves out the groups still waiting out a backoff: their rows stay.
func (a *applier) plan(batch []Row, now time.Time) []*move {
	byGroup := map[string]*move{}
	var moves []*move
	for _, r := range batch {
		if rt := a.retry[r.Group]; rt != nil {
			rt.sweep = a.sweep
			if now.Before(rt.at) {
				continue
			}
		}
		mv := byGroup[r.Group]
		if mv == nil {
			mv = &move{group: r.Group}
			byGroup[r.Group] = mv
			moves = append(moves, mv)
		}
		mv.version = max(mv.version, r.Version)
		mv.ids = append(mv.ids, r.ID)
		mv.ages = append(mv.ages, r.Age)
	}
	return moves
}

// moveAll moves every group, MoveConcurrency at a time. Mover has no
// context: a move in flight finishes even when the leader is stopping.
func (a *applier) moveAll(moves []*move) {
	var g errgroup.Group
	g.SetLimit(a.inv.cfg.MoveConcurrency)
	for _, mv := range moves {
		g.Go(func() error {
			mv.err = a.inv.mover.Move(mv.group, mv.version)
			mv.movedAt = a.inv.clock.Now()
			return nil
		})
	}
	g.Wait()
}

// notifyHolders tells the proxies that hold invalidation leases which
// groups moved, and waits for them (or their leases) before any row is
// deleted. If they could not be told (no copy of the lease registry
// answered), every move of the batch counts as failed: the rows stay and
// are moved, and told, again.
func (a *applier) notifyHolders(moves []*move) {
	if a.inv.notify == nil {
		return
	}
	var groups []string
	for _, mv := range moves {
		if mv.err == nil {
			groups = append(groups, mv.group)
		}
	}
	if len(groups) == 0 {
		return
	}
	if err := a.inv.notify(groups); err != nil {
		a.inv.m.notifyFailures.Inc()
		for _, mv := range moves {
			if mv.err == nil {
				mv.err, mv.movedAt = err, a.inv.clock.Now()
			}
		}
	}
}

// moveFailed schedules the group's retry, the delay doubling per failure.
// A move refused because its node is marked down failed without a round
// trip, and is retried every round without backoff: the store's probe puts
// the node back in use, and the group must move then, not up to RetryMax
// later. The "pending" bound (proxy/PROTOCOL.md) counts from the node's
// return.
func (a *applier) moveFailed(mv *move) {
	a.inv.m.moveFailures.Inc()
	rt := a.retry[mv.group]
	if rt == nil {
		rt = &retry{}
		a.retry[mv.group] = rt
	}
	if errors.Is(mv.err, store.ErrUnavailable) {
		rt.delay, rt.at, rt.sweep = 0, mv.movedAt, a.sweep
		return
	}
	rt.delay = a.backoff(rt.delay)
	rt.at = mv.movedAt.Add(rt.delay)
	rt.sweep = a.sweep
}

// noteFailing logs when moves start failing and when no group is left
// waiting for a retry: once per change of state, not once per row. first is
// the round's first failed move, if any.
func (a *applier) noteFailing(first *move) {
	switch failing := len(a.retry) > 0; {
	case failing && !a.failing && first != nil:
		a.inv.log.Warn("moves failing: their rows stay in invalidation_log and are retried with backoff",
			zap.String("group", first.group), zap.Error(first.err))
	case !failing && a.failing:
		a.inv.log.Info("moves recovered: no group is waiting for a retry")
	}
	a.failing = len(a.retry) > 0
}

// backoff is the delay after prev: twice as long, from twice the poll
// interval up to RetryMax.
func (a *applier) backoff(prev time.Duration) time.Duration {
	return min(max(2*prev, 2*a.inv.cfg.PollInterval), a.inv.cfg.RetryMax)
}

func (a *applier) dbRefused(err error) {
	a.inv.m.dbErrors.Inc()
	a.dbDelay = a.backoff(a.dbDelay)
	if !a.dbFailing {
		a.dbFailing = true
		a.inv.log.Warn("invalidation_log statements failing; retrying with backoff", zap.Error(err))
	}
}

func (a *applier) dbAnswered() {
	if a.dbFailing {
		a.inv.log.Info("invalidation_log statements answered again")
	}
	a.dbFailing, a.dbDelay = false, 0
}
