// Package proxy is the edgecache edge: a fasthttp reverse proxy that answers
// reads (GET/HEAD) from an in-process copy (L1) and from memcached shared by
// every proxy instance (package store), fills them from the origin with one
// request per key across the fleet, forwards writes and, before a write's
// answer leaves, invalidates everything the write changed. The HTTP caching
// rules themselves (what may be stored, freshness, Age, Cache-Status, keys)
// live in package cachepolicy; this package does the I/O.
//
// # The guarantee
//
// proxy/PROTOCOL.md states it once, with every piece of state that keeps
// it, the faults that can destroy each, and the seeded simulator that
// checks them (simulate_test.go).
//
// Once the answer to a write has reached its client without an
// Edgecache-Invalidation field, no proxy instance serves a representation
// older than that write for anything the write changed: the resource, the
// lists that contain it, the parent whose counters it moved. With
// "Edgecache-Invalidation: pending" (memcached could not take a move, or the
// origin's answer was lost), the durable invalidator finishes the job within
// its bound (poll interval + peer timeout + lease duration, 1.21 s by
// default: the moves, then every lease holder told or its lease ended)
// once memcached is whole again. Row changes that never pass the edge
// (INSERT, UPDATE, DELETE typed by hand, batch jobs) are covered by the
// same durable path. Schema changes the triggers cannot log (TRUNCATE,
// DROP, RENAME, a restored backup) are found by the invalidator within
// INVALIDATOR_DDL_INTERVAL and answered with a flush of memcached and a
// lease duration's wait (proxy/PROTOCOL.md; what that does not cover is
// listed in proxy/invalidator/doc.go and proxy/README.md).
//
// # Read path (read.go), after Varnish
//
//	recv → hash → lookup → hit | miss | pass → fill → deliver
//
// recv drops internal fields and parses the request's directives; a request
// with Authorization is a pass. hash builds the primary key
// (scheme://host/path?query, normalised); the memcached keys are built only
// when memcached is asked. lookup reads L1 — without asking memcached while
// this proxy holds its invalidation lease and no mover has named one of the
// entry's groups since it was last checked (below) — else the entry and its
// group values in one round trip shared with the requests in flight
// (store.Lookup); the entry counts only if Vary matches and every group is
// current. A miss coalesces: one fill per key
// per process (singleflight), one per key across the fleet (a lease in
// memcached); a waiter checks the shared result against its own lookup.
//
// # Fill (fill.go), after Varnish's fetch states
//
//	take the lease → snapshot the groups → fetch → revalidate on 304 →
//	resolve the response's groups → store
//
// # Invalidation (invalidate.go, package store)
//
// Each group's value in memcached is (incarnation, epoch, origin version).
// A fill records, per group, the (incarnation, epoch) it read before its
// origin fetch; an entry is current only while each group still has that
// incarnation and an epoch not past the recorded one. A write moves each
// changed group (epoch+1, compare-and-swap) before its answer leaves: every
// fill that could have read older data recorded an epoch that is now behind,
// on every proxy at once. A lost group key comes back with a new random
// incarnation, so nothing recorded against the old one validates; no clock
// is involved anywhere. An operator's soft purge (admin POST /purge?soft=1)
// moves the epoch but not the group's last hard epoch (store.Group.Hard):
// entries recorded since that hard move are served stale while one
// refresh runs. Writes and the durable invalidator only ever move hard.
//
// Two paths move groups. The synchronous one (this package) serves the
// writer's own read-after-write: a failed move is retried at once on a new
// connection, then queued and replayed as soon as its node answers. The
// durable one (package invalidator) tails the invalidation_log table that
// the database's triggers fill in the same transaction as every change, and
// moves the same groups from there, so that a lost answer, a memcached
// stall, a partition between one proxy and one node or a writer that dies
// with moves queued still ends in an invalidation. Moves are idempotent in
// effect: both paths may move the same group.
//
// # Leases: L1 without memcached (package lease)
//
// With PROXY_PEER_SECRET set, a proxy holds an invalidation lease, renewed
// in a registry that every memcached node keeps a copy of. Both paths,
// after moving groups, read the registry and tell every holder which group
// keys moved, and wait for each acknowledgement, or, for a holder that does
// not answer, revoke it and wait until its lease has surely ended, before
// the write is answered or the log rows deleted. A holder records the
// notification (per bucket of group keys, the sequence of the last
// notification) before it acknowledges; an L1 entry is served without a
// memcached check only while the lease is held, it was last checked in
// memcached after the lease was (re)gained, and no notification named one
// of its groups since that check began. The guarantee therefore holds for
// L1 as for memcached: a write's answer leaves only once every proxy that
// could serve an older copy unchecked has stopped doing so.
//
// # Consistency checks (consistency.go)
//
// The guarantee is also measured: a share of hits is checked again off the
// request path, against the primary (the same GET with Edgecache-Fresh and
// the served ETag as If-None-Match). A difference counts as stale only if
// the cache still serves the older state a whole invalidation bound after
// the newer one was seen on the primary, so a write in flight is never
// counted; the argument is in consistency.go.
//
// # Lagging replicas
//
// The group value keeps the newest origin version that a write, the
// invalidator or a fill reported. A response naming an older version came
// from a replica that is behind: it is fetched again from the primary
// (Edgecache-Fresh: 1); if that is older too (a write raced it) it answers
// that request and is not stored. A version of 0 (a group re-created after
// its key was lost) is unknown: the fill asks the primary, then raises the
// version to what the primary said (store.Learn), so later fills can check
// replicas again. A key filled for the first time (no groups known for it)
// reads a replica: the groups its answer names are read after the fetch
// (resolveGroups), and one that is missing or without a version sends the
// fill to the primary. Reading them after the fetch is enough: a write the
// answer misses either moved a group after that read (the entry's recorded
// epoch is behind) or before it (the group's version is newer than the
// answer's). An answer that names no group cannot be checked that way; the
// origin names one on every answer it lets be stored. A group named at
// version 0 (a 404: the row does not exist) has no version to compare; the
// origin answers it only from the primary, so it goes to the client as it
// is, and the entry is stored as a witness of its groups, never current,
// for the next fill to record them before its fetch.
package proxy
