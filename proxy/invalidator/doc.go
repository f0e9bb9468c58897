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
// # Schema changes
//
// Triggers log rows. TRUNCATE, DROP TABLE, RENAME TABLE, a restored backup,
// a dropped or re-created trigger and a truncated invalidation_log change
// what the proxies cache without a row (ddl.go). Every DDLInterval,
// between rounds, the leader reads, for each watched table (every table
// with a trigger that writes invalidation_log, every table recorded in
// invalidation_ddl, and invalidation_log), InnoDB's table id (a new one
// for every TRUNCATE and CREATE; CREATE_TIME stays the same across a
// TRUNCATE in MariaDB 10.11, so it cannot tell) and its triggers with
// their creation times, and compares them with invalidation_ddl.
//
// A difference flushes every memcached node (Mover.FlushAll): entries name
// row groups, not tables, so all must go. Every group created again has a
// new incarnation, so no entry recorded before validates (package store),
// and every copy of the lease registry is gone, so every lease holder loses
// its lease at its next renewal, at the latest one lease duration after
// the flush (package lease). Only after that duration is the new state
// written to invalidation_ddl: a leader that dies before leaves the change
// to the next one, which finds it against the old state, however long
// nobody led. A flush that fails records nothing and is retried at the
// next check. The state is read before the flush, so a change made during
// the flush is found at the next check.
//
// A watched table that exists without AFTER INSERT, UPDATE and DELETE
// triggers writing the log can no longer be invalidated row by row: the
// leader logs an error, sets edgecache_invalidator_log_triggers_missing and
// fails /readyz until the triggers are back, or until the table's row is
// deleted from invalidation_ddl (a table dropped for good). A statement
// the server refuses (no invalidation_ddl, no PROCESS privilege to read
// InnoDB's table ids) is logged and retried; the log is applied meanwhile.
// InvalidateAll (POST /invalidate-all) does the flush and the wait on
// demand, for what the check cannot see.
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
//
// # Memcached membership
//
// The leader is also the one writer of the memcached membership (package
// membership; members.go). The database holds it: memcached_generations,
// every generation published, and memcached_desired, the nodes operators
// asked for (POST /memcached/add, remove, replace on any instance; without
// a row, INVALIDATOR_MEMCACHED, the seeds). Every
// INVALIDATOR_MEMCACHED_CHECK_INTERVAL the leader reads both on its locked
// session, asks every desired or member node for its version, and aims the
// read set at the desired nodes, minus those failing for
// INVALIDATOR_MEMCACHED_EJECT_AFTER and minus non-members that do not
// answer (never at nothing). A change is three generations (dual-write,
// dual-read, settled: membership.Next), published at least
// INVALIDATOR_MEMCACHED_VIEW apart, the followers' trust time, counted for a
// new leader from when it began: every follower has read a generation, or
// stopped using memcached, before the next one. A node joining is flushed
// before the generation that brings it in (what it holds was written by no
// generation that reads it there); a node that cannot be flushed holds
// the step back. Each round writes the document (the view time and the
// last membership.Keep generations) to every member that answers, so an
// evicted or restarted node has it again within a round.
//
// The first leader ever publishes the seeds as generation 1. A generation
// number already taken (duplicate key) means another decider publishes
// too: the leader steps down and contends again. Its statements run on the
// locked session, so an old leader whose session is gone publishes nothing.
package invalidator
