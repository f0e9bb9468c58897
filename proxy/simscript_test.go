package proxy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"edgecache/proxy/store"
)

// The simulator's counterexamples, kept as scripts over its world: each
// failed before its fix (PROTOCOL.md, "Counterexamples").

// twoHolders is a world of two proxies holding leases, where proxy 1
// serves resource r from its L1 copy under its lease. The caller closes it
// and checks w.failure.
func twoHolders(t *testing.T, r int) *simWorld {
	w := newSimWorld(t, 1, testing.Verbose())
	w.startProc(0, "")
	w.startProc(1, "")
	w.advance(10 * time.Millisecond)
	w.read(1, r)
	w.read(1, r) // an L1 copy, served under the lease
	return w
}

func (w *simWorld) mustHold(t *testing.T) {
	t.Helper()
	if w.failure != "" {
		t.Fatal(w.failure)
	}
}

// Every copy of the lease registry lost (flush_all) and re-created by one
// member's renewal: a write through that member read a copy listing only
// itself, told nobody and waited for nothing, while the other member
// still served its L1 copy under the lease it got through the lost copies.
func TestSimRegistryRecreatedWhileAHolderServes(t *testing.T) {
	w := twoHolders(t, 0)
	defer w.close()
	w.advance(simLease / 3)
	for n := range simNodes {
		w.st.Flush(n)
	}
	w.procs[0].h.Renew() // re-creates every copy, listing only itself
	w.write(0, 0)
	w.read(1, 0)
	w.mustHold(t)
}

// A process restarted on another member's advertised address: a write's
// notification for the member reached the new process, which acknowledged
// it, while the member kept serving its L1 copy.
func TestSimNotificationForAnotherMember(t *testing.T) {
	w := twoHolders(t, 0)
	defer w.close()
	w.startProc(2, w.procs[1].addr) // listens where member 1 is registered
	w.advance(simLease / 3)
	w.write(0, 0)
	w.read(1, 0)
	w.mustHold(t)
}

// A write answered "pending" (the list group's node down), its writer
// killed with the move queued: the durable invalidator must move the group
// within the bound once the node is back, not up to
// INVALIDATOR_RETRY_MAX later, while every proxy reads the old list.
func TestSimPendingWriteOfAKilledWriter(t *testing.T) {
	w := twoHolders(t, -1)
	defer w.close()
	node := w.st.NodeOf(store.GroupKey("list"))
	lk := store.GroupKey("list")
	moved := 0 // the invalidator's attempts to move the list group
	w.st.Before(func(op, key string) {
		if op == "Move" && key == lk {
			moved++
		}
		w.hook(op, key)
	})
	w.setDown(node, true)
	w.upAt[node] = w.clock.Now().Add(time.Hour) // back when the script says
	w.write(0, 0)
	w.kill(0, false)
	// Down long enough for the invalidator's retries to back off, then
	// back just after one of them failed.
	w.advance(3 * time.Second)
	for n := moved; moved == n; {
		w.advance(simPoll)
	}
	w.setDown(node, false)
	w.advance(simBound)
	w.read(1, -1)
	w.mustHold(t)
}

// A live member's heartbeats evicted, and another member's collection
// takes it out of every copy: until its next renewal it still serves its
// L1 copies under its lease, listed nowhere. A write must not pass it by:
// the copies' removals moved, so movers wait until they are a lease old.
func TestSimMemberCollectedWhileItHoldsALease(t *testing.T) {
	w := twoHolders(t, 0)
	defer w.close()
	w.advance(simLease) // every copy a lease old: no write waits for a young one
	for n := range simNodes {
		w.st.Evict(n, "r:hb:"+w.procs[1].id)
	}
	// A collecting round comes every third renewal, by one member in as
	// many as are listed: renew until member 1 is out of every copy.
	listed := func() bool {
		for n := range simNodes {
			if it, err := w.st.NodeGet(n, "r:leases"); err == nil && strings.Contains(string(it.Value), w.procs[1].id+" ") {
				return true
			}
		}
		return false
	}
	for i := 0; listed(); i++ {
		if i == 300 {
			t.Fatal("member 1 was never collected")
		}
		w.procs[0].h.Renew()
	}
	w.write(0, 0)
	w.read(1, 0)
	w.mustHold(t)
}

// A proxy that does not know a key's groups finds its entry no longer
// current, and one of the groups it names at origin version 0 (taken again
// by a 404's fill after it was lost, and never told a version since): a
// replica's answer cannot be checked against it, so the fill must go to
// the primary. It went to the lagging replica, and stored the post as it
// was before its acknowledged delete.
func TestSimUnknownGroupOfAnEntryNotCurrentSendsTheFillToThePrimary(t *testing.T) {
	w := newSimWorld(t, 1, testing.Verbose())
	defer w.close()
	w.startProc(0, "")
	w.startProc(1, "")
	w.write(0, simAbsent) // created: v1
	w.read(0, simAbsent)  // stored, naming post/3
	w.db.mu.Lock()
	w.db.lag = 1 // the replica will not have the delete
	w.db.mu.Unlock()
	w.writeAs(0, simAbsent, "DELETE", w.path(simAbsent))
	g := store.GroupKey("post/" + strconv.Itoa(simAbsent))
	w.st.Evict(w.st.NodeOf(g), g)
	w.read(0, simAbsent) // proc 0 knows the group: taken before its fetch, at 0; the 404 stored
	u := store.GroupKey(store.URLGroup(w.primary(simAbsent)))
	w.st.Evict(w.st.NodeOf(u), u) // the 404's entry no longer current; post/3 still at 0
	w.read(1, simAbsent)
	w.read(1, simAbsent)
	w.mustHold(t)
}
