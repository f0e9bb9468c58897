package fleet

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"edgecache/deploy/localstack"
)

// The faults below complete the controls of controls.go: each injects one thing
// production sees every day, and undoes it.

// KillProxy ends the zone's proxy at once, as a crash would: no drain,
// in-flight requests cut, and whatever it held in memory (moves queued for
// a node that did not answer) lost with it. Its relays stay: connections
// to it are refused, as to a dead process's port.
func (f *Fleet) KillProxy(zone string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.runningProxy(zone)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	z.Proxy.Shutdown(ctx) // an expired context: nothing waits, nothing is replayed
	z.Proxy = nil
	return nil
}

// StartProxy starts the zone's proxy again, with an empty memory, behind
// its old relays (HAProxy's configuration names them).
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
	if z.proxyRelay == nil {
		return fmt.Errorf("zone %s was killed", zone)
	}
	if err := f.startProxy(z, "127.0.0.1:0", "127.0.0.1:0"); err != nil {
		return err
	}
	z.proxyRelay.Retarget(z.proxyAddr)
	z.adminRelay.Retarget(z.adminAddr)
	return nil
}

// RestartMemcached restarts the zone's memcached node empty on its old
// address: every entry and group value it held is lost.
func (f *Fleet) RestartMemcached(ctx context.Context, zone string) error {
	return f.memcached(zone, func(m *localstack.Memcached) error { return m.Restart(ctx) })
}

// StopMemcached ends the zone's memcached node (its port refuses
// connections); StartMemcached starts it again, empty, on the same address.
func (f *Fleet) StopMemcached(zone string) error {
	return f.memcached(zone, func(m *localstack.Memcached) error {
		m.Resume() // a stopped process ends on SIGTERM only once continued
		m.Stop()
		return nil
	})
}

// StartMemcached restarts a node StopMemcached ended.
func (f *Fleet) StartMemcached(ctx context.Context, zone string) error {
	return f.memcached(zone, func(m *localstack.Memcached) error { return m.Start(ctx) })
}

// memcached runs op on the zone's memcached node, which is not paused
// afterwards.
func (f *Fleet) memcached(zone string, op func(*localstack.Memcached) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.runningMemcached(zone)
	if err != nil {
		return err
	}
	z.paused = false
	return op(z.Memcached)
}

// DropOriginAnswers makes the path to the zone's origin lose (true) or
// pass (false) the origin's answers: requests arrive and are acted on, the
// proxy sees the connection close.
func (f *Fleet) DropOriginAnswers(zone string, drop bool) error {
	z, err := f.zone(zone)
	if err != nil {
		return err
	}
	if z.originRelay == nil {
		return fmt.Errorf("zone %s has no origin running", zone)
	}
	z.originRelay.DropAnswers(drop)
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

// KillInvalidatorSession ends the leading invalidator's database
// connection from the server side (KILL, as when its host dies and the
// server drops it): its lock is released, a standby takes over. The
// leader's process stays and becomes a standby. It returns the zone that
// led.
func (f *Fleet) KillInvalidatorSession(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	db, err := sql.Open("mysql", f.Primary.DSN(""))
	if err != nil {
		return "", err
	}
	defer db.Close()
	var holder sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK('edgecache.invalidator')").Scan(&holder); err != nil {
		return "", err
	}
	if !holder.Valid {
		return "", errors.New("no invalidator holds the lock")
	}
	leader := ""
	for _, name := range Zones {
		if inv := f.zones[name].Invalidator; inv != nil && inv.Leading() {
			leader = name
		}
	}
	_, err = db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", holder.Int64))
	return leader, err
}

// PausePrimary and PauseReplica freeze a database (SIGSTOP): connections
// open, nothing answers. ResumeDatabases continues both.
func (f *Fleet) PausePrimary() error { return f.Primary.Pause() }
func (f *Fleet) PauseReplica() error { return f.Replica.Pause() }

// ResumeDatabases continues a paused primary and replica.
func (f *Fleet) ResumeDatabases() error {
	return errors.Join(f.Primary.Resume(), f.Replica.Resume())
}
