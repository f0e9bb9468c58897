package fleet

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The faults below complete the drills of fleet.go: each injects one thing
// production sees every day, and undoes it.

// KillProxy ends the zone's proxy at once, as a crash would: no drain,
// in-flight requests cut, and whatever it held in memory (moves queued for
// a node that did not answer) lost with it.
func (f *Fleet) KillProxy(zone string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.zone(zone)
	if err != nil {
		return err
	}
	if z.Proxy == nil {
		return fmt.Errorf("zone %s: proxy already stopped", zone)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	z.Proxy.Shutdown(ctx) // an expired context: nothing waits, nothing is replayed
	z.Proxy = nil
	return nil
}

// StartProxy starts the zone's proxy again on its old addresses (HAProxy's
// configuration names them), with an empty memory.
func (f *Fleet) StartProxy(zone string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.zone(zone)
	if err != nil {
		return err
	}
	if z.Proxy != nil {
		return fmt.Errorf("zone %s: proxy is running", zone)
	}
	// The old listener's port may linger for a moment after a kill.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = f.startProxy(z, z.proxyAddr, z.adminAddr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RestartMemcached restarts the zone's memcached node empty on its old
// address: every entry and group value it held is lost.
func (f *Fleet) RestartMemcached(ctx context.Context, zone string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.zone(zone)
	if err != nil {
		return err
	}
	if z.Memcached == nil {
		return fmt.Errorf("zone %s: memcached is stopped", zone)
	}
	z.paused = false
	return z.Memcached.Restart(ctx)
}

// DropOriginAnswers makes the path to the zone's origin lose (true) or
// pass (false) the origin's answers: requests arrive and are acted on, the
// proxy sees the connection close.
func (f *Fleet) DropOriginAnswers(zone string, drop bool) error {
	z, err := f.zone(zone)
	if err != nil {
		return err
	}
	if z.OriginRelay == nil {
		return fmt.Errorf("zone %s has no origin", zone)
	}
	z.OriginRelay.DropAnswers(drop)
	return nil
}

// StopReplicaSQL stops (true) or starts (false) the replica's SQL thread:
// it receives the primary's changes but does not apply them (lag).
func (f *Fleet) StopReplicaSQL(ctx context.Context, stop bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Replica == nil {
		return errors.New("replica is stopped")
	}
	if stop {
		return f.Replica.Exec(ctx, "STOP SLAVE SQL_THREAD")
	}
	return f.Replica.Exec(ctx, "START SLAVE SQL_THREAD")
}

// RestartPrimary restarts the MariaDB primary on its data and port; writes
// fail while it is down.
func (f *Fleet) RestartPrimary(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Primary == nil {
		return errors.New("primary is stopped")
	}
	return f.Primary.Restart(ctx)
}

// PostVersions reads every post's version from the primary.
func (f *Fleet) PostVersions(ctx context.Context) (map[int64]int64, error) {
	db, err := sql.Open("mysql", f.Primary.DSN("edgecache"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT id, version FROM posts")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}
