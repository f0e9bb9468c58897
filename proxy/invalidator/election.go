package invalidator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Run contends for the lock, applies the log while it leads, and stands by
// while another instance does, until ctx is done. Losing the database or
// the lock is not an error: it reconnects and contends again. On return
// the lock is released (when the connection still works) and the
// connection closed.
func (inv *Invalidator) Run(ctx context.Context) {
	for {
		err := inv.runSession(ctx)
		if ctx.Err() != nil {
			return
		}
		inv.setConnected(err)
		if !sleep(ctx, inv.cfg.LockRetry) {
			return
		}
	}
}

// runSession opens one pinned connection, tries the lock on it every
// LockRetry until it gets it, then leads on it until the connection or the
// lock is lost.
func (inv *Invalidator) runSession(ctx context.Context) error {
	s, err := openSession(ctx, inv.db, inv.cfg.LockName, inv.cfg.SessionTimeout)
	if err != nil {
		return err
	}
	defer s.close()
	inv.m.sessionsOpen.Inc()
	for {
		got, holder, err := s.tryLock()
		if err != nil {
			return err
		}
		inv.setConnected(nil)
		if got {
			return inv.lead(ctx, s)
		}
		inv.standBy(holder)
		if !sleep(ctx, inv.cfg.LockRetry) {
			return ctx.Err()
		}
	}
}

// lead applies the log over s, which holds the lock, and decides the
// memcached membership (members.go), while checking every PingInterval
// that it still holds the lock. It returns why it stopped leading.
func (inv *Invalidator) lead(parent context.Context, s *session) error {
	inv.setLeading(true, nil)
	ctx, cancel := context.WithCancelCause(parent)
	var once sync.Once
	stepDown := func(why error) {
		once.Do(func() {
			cancel(why)
			inv.setLeading(false, why)
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { inv.keepAlive(ctx, s, stepDown) })
	wg.Go(func() {
		// Two deciders publishing means two leaders: step down, and contend
		// again on a new session.
		if err := newDecider(inv).run(ctx, s); errors.Is(err, errAnotherDecider) {
			stepDown(err)
		}
	})
	err := newApplier(inv).run(ctx, s)
	if parent.Err() != nil {
		err = errStopping
	}
	stepDown(err)
	wg.Wait()
	if parent.Err() != nil {
		// Closing the connection frees the lock too, but only once the server
		// has processed the disconnect; releasing it first means the lock is
		// free when Run returns. It fails when the connection is already
		// gone, which is fine: the server frees it as it sees the close.
		s.release()
	}
	return context.Cause(ctx)
}

// errStopping is why a leader steps down when Run's context ends.
var errStopping = errors.New("stopping")

// keepAlive checks that s still holds the lock every PingInterval, and
// steps down when the check fails: the connection is gone (killed, dropped
// by wait_timeout while this process was paused) and the lock with it.
// Between checks the apply loop's own statements would notice too; the
// check covers the times it is busy moving or waiting.
func (inv *Invalidator) keepAlive(ctx context.Context, s *session, stepDown func(error)) {
	t := time.NewTicker(inv.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := s.holdsLock()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			stepDown(fmt.Errorf("lock check: %w", err))
			return
		case !held:
			stepDown(errors.New("lock check: this session no longer holds the lock"))
			return
		}
	}
}

// sleep waits d, or until ctx is done (then it returns false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
