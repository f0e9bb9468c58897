// Package invalidator is the durable path of invalidation (README,
// "Invalidation and the read-after-write guarantee"): it applies invalidation_log, the rows every committed
// change appends in its own transaction, to memcached, so that a change is
// invalidated on every proxy whatever happened to the process that made it.
//
// # What it does
//
// One instance leads; the others stand by. The leader reads the log in id
// order, moves each group it names (Mover.Move, a compare-and-swap in
// memcached), and deletes the rows whose group moved. A row is deleted only
// after its move succeeded, so every committed row is moved at least once.
// Moving is idempotent in effect (a second move only invalidates again), so
// moving a row more than once is harmless; moving it zero times is the one
// failure that breaks the read-after-write guarantee.
//
// # Why applied rows are deleted instead of a position stored
//
// AUTO_INCREMENT ids are handed out at insert, but transactions commit in
// any order: a transaction holding id 5 can commit after the one holding
// id 6. A reader that records "applied up to id 6" never looks at 5 again
// and skips it. Deleting exactly the rows that were applied never skips
// one: a row that commits late is still in the table, and the next read
// from the start finds it. The table stays as small as the backlog.
//
// Reads walk the table in id order a batch at a time (a sweep) and start
// again from the lowest id when they reach the end. Rows whose move failed
// stay behind and are retried on a later sweep, after a backoff per group:
// one memcached node that is down neither stalls the groups on the others
// (the failed rows do not pin the head of every read) nor is hammered by
// retries.
//
// # Election
//
// The leader holds a MySQL named lock, GET_LOCK(INVALIDATOR_LOCK_NAME, 0),
// which belongs to the session that took it and is released when that
// session ends. It is taken on a pinned connection (sql.Conn) that is kept
// for as long as the instance leads, and every statement the leader runs
// (reads, deletes, a check of the lock every INVALIDATOR_PING_INTERVAL)
// goes over it: when the connection is lost, the lock is lost with it, and
// the leader's next statement fails, so it stops and contends again. Pinned
// connections are closed, never returned to the pool: one that went back
// would keep holding the lock for whoever borrows it next.
//
// A leader that stops without closing its connection (a paused process, a
// network partition) would hold the lock forever, so each pinned connection
// sets a short wait_timeout (INVALIDATOR_SESSION_TIMEOUT): the server drops
// a session silent for that long, which frees the lock for a standby. A
// leader that is resumed after that finds its connection closed at its next
// statement and steps down; at most the batch it already had in hand is
// moved late (see above: harmless). A killed process's kernel closes its
// connection at once, so a standby, retrying every INVALIDATOR_LOCK_RETRY,
// takes over within about that long.
//
// Two instances may both believe they lead for a moment: the old leader
// between the server dropping its session and its next statement. That is
// safe: each can only move groups (idempotent) and delete rows it moved
// itself.
package invalidator
