// Package lease lets a proxy serve its in-process copies (L1) without
// asking memcached, while keeping the read-after-write guarantee
// (proxy/doc.go): after Chubby's client-cache leases (Burrows, OSDI 2006;
// Gray and Cheriton, SOSP 1989), with memcached as the only shared server
// and no static list of peers.
//
// # Members and the registry
//
// Every node of memcached keeps a copy of the registry (RegistryKey): a
// random incarnation, chosen when the copy is created, a count of the
// members others took out of it (removals), and one line per member: id,
// peer address, the member's lease duration D, live or revoked. A member
// (Holder) renews every D/3 on every node: it reads the copy, checks that
// it is listed live, and sets its own heartbeat key, which expires 3 D
// later. The copy is written only when it changes (a member joins or
// rejoins, is revoked, or is taken out), so what renewals write grows
// with the number of members, not its square; and a copy that has not
// changed since a member or mover last read it is read as its version
// only (CAS unique, flags and size, a memcached meta get), so neither does
// what they read. A member holds its lease,
// and may serve L1 without asking memcached, only while its last round
// that every node took began less than D minus a margin (D/10) ago by its
// own monotonic clock.
//
// # Movers
//
// Every mover (the proxy's write path, purges, the durable invalidator),
// after moving groups in memcached, reads the registry and sends the moved
// group keys to every member (Notifier), then waits for each one's
// acknowledgement. A member acknowledges only after it has recorded the
// groups, so that none of its entries naming them is served unchecked
// again. A member that does not acknowledge within the timeout is revoked
// (its entry marked R by compare-and-swap), and the mover waits until the
// leases it could still hold have ended: D after the revocation (a renewal
// in flight at the revocation began before it, and what it extends ends
// within D), or D after the registry was read if it was revoked already.
// Only durations on the mover's own monotonic clock are used; no two
// machines' clocks are compared.
//
// Order matters: the moves come first, then the registry read. A member
// that registers after the read checks its entries in memcached before it
// serves them unchecked, and finds the moves there.
//
// # Why a lease needs every copy, and why a copy must be old
//
// A member holds a lease only through a round that every copy took, so a
// copy that reads well lists every member that renewed into it. It does
// not list a member whose last round went into a copy since lost: a copy
// evicted, flushed or on a restarted node is re-created by the next
// member to renew, listing only those that renewed since, while the
// others still hold leases from the lost copy for up to D. A mover
// therefore trusts a copy as complete only once it has known that copy
// (its incarnation and removals) for D, by its own reads or its own
// member's renewals (Notifier.firstSaw); until then it also waits until
// the copy is D old, when every lease from before it has ended. Removals
// count for the same reason: a member taken out while it still held a
// lease (its heartbeat evicted) is listed nowhere until its next renewal. A node that is down turns
// leases off (every L1 hit is checked in memcached, as without leases),
// but stops no write. No copy answering at all is an error: the write
// answers "pending" and the durable invalidator retries.
//
// # Messages
//
// A message names the member it is for and is signed with the shared
// secret (HMAC over member, a random nonce and the body); the member
// answers with a signed acknowledgement of the nonce. No secret crosses
// the network, another process listening at a member's address refuses
// the message (and the mover treats the member as one that did not
// answer), and movers send only to addresses inside the peer networks,
// whatever memcached's registry lists. proxy/PROTOCOL.md has the whole
// protocol and the faults the simulator checks.
//
// # Losing and regaining a lease
//
// A member whose lease lapsed (renewals failed, the process was paused
// longer than D), or whose renewal finds that movers may have passed it by
// (the copy re-created, its entry revoked or removed), checks every hit in
// memcached. When it holds the lease again it raises a floor: every entry
// checked before is checked in memcached once more before it is served
// unchecked.
//
// A member whose heartbeat on a node is gone is taken out of that node's
// copy by the next member that collects (every third round): a crashed
// proxy costs writes a lease duration each for about 3 D, and a live one
// whose heartbeat was evicted renews itself back in (its lease lost, its
// entries checked again). A revoked
// member rejoins at once the first time, then after a backoff that doubles
// up to 64 D, so that one whose peer listener movers cannot reach does not
// cost every write a lease duration.
package lease
