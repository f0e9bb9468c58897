package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"

	"edgecache/deploy/localstack"
)

func startNodes(t *testing.T, n int) []*localstack.Memcached {
	t.Helper()
	var out []*localstack.Memcached
	for range n {
		m, err := localstack.StartMemcached(context.Background(), 16)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		out = append(out, m)
	}
	return out
}

func storeOver(t *testing.T, addrs ...string) *Store {
	t.Helper()
	s, err := New(Config{Nodes: addrs, Timeout: 500 * time.Millisecond, MaxIdleConns: 8, ProbeInterval: time.Hour},
		zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A node taken out of the list and put back later: the group values it
// kept were not moved by the writes made meanwhile (they went to the node
// that took its keys), so it is flushed before it is used again, and
// nothing recorded before validates.
func TestNodePutBackIsFlushed(t *testing.T) {
	nodes := startNodes(t, 2)
	a, b := nodes[0].Addr, nodes[1].Addr
	both := storeOver(t, a, b)
	var name string
	for i := 0; name == ""; i++ {
		if n := fmt.Sprint("post/", i); both.NodeOf(GroupKey(n)) == 1 {
			name = n
		}
	}
	before, _, err := both.Ensure(GroupKey(name), 1) // what an entry filled then records
	if err != nil {
		t.Fatal(err)
	}
	alone := storeOver(t, a) // restarted with node b left out
	if err := alone.Move(name, 2); err != nil {
		t.Fatal(err)
	}
	again := storeOver(t, a, b) // b put back, with its old contents
	after, created, err := again.Ensure(GroupKey(name), 0)
	if err != nil {
		t.Fatal(err)
	}
	if after.Validates(before.Incarnation, before.Epoch) {
		t.Fatalf("node b came back with the group as it was before the write (%+v, created %v): an old entry validates", after, created)
	}
	if again.m.joinFlushes.Get() != 1 {
		t.Errorf("%d nodes flushed on rejoining, want 1 (b)", again.m.joinFlushes.Get())
	}
}

// The same node reached at another address (a relay, a name instead of an
// IP) is the same member: neither process finds the other's list newer.
func TestOneNodeAtTwoAddressesIsOneMember(t *testing.T) {
	node := startNodes(t, 1)[0]
	rl, err := localstack.StartRelay(node.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Kill()
	direct := storeOver(t, node.Addr)
	relayed := storeOver(t, rl.Addr())
	direct.checkMembership()
	relayed.checkMembership()
	for _, s := range []*Store{direct, relayed} {
		if s.membership.outdated || !s.NodeUp(0) || s.membership.gen != 1 {
			t.Fatalf("outdated %v, up %v, generation %d: want one membership of generation 1", s.membership.outdated, s.NodeUp(0), s.membership.gen)
		}
	}
}

// A running process whose list is no longer the fleet's (another started
// with a new one) stops using memcached: where it would read and move
// groups is not where the others do.
func TestOutdatedProcessStopsUsingMemcached(t *testing.T) {
	nodes := startNodes(t, 2)
	old := storeOver(t, nodes[0].Addr, nodes[1].Addr)
	storeOver(t, nodes[0].Addr) // the new list
	old.checkMembership()
	if !old.membership.outdated || old.NodeUp(0) || old.NodeUp(1) {
		t.Fatalf("outdated %v, nodes up %v %v: want the old list's process out of memcached", old.membership.outdated, old.NodeUp(0), old.NodeUp(1))
	}
	if err := old.MoveOrQueue("post/1", 1); err == nil {
		t.Fatal("an outdated process's move succeeded: the write's answer must say pending")
	}
}

// A node emptied (restarted without its memory file, flush_all: its stamp
// gone with everything else) joins a new generation, and the processes
// that were fine with the old one follow.
func TestEmptiedNodeJoinsANewGeneration(t *testing.T) {
	node := startNodes(t, 1)[0]
	s1, s2 := storeOver(t, node.Addr), storeOver(t, node.Addr)
	if err := memcache.New(node.Addr).FlushAll(); err != nil {
		t.Fatal(err)
	}
	s1.checkMembership()
	s2.checkMembership()
	for i, s := range []*Store{s1, s2} {
		if s.membership.outdated || s.membership.gen != 2 || !s.isMember(0) {
			t.Fatalf("process %d: outdated %v, generation %d, member %v; want generation 2", i, s.membership.outdated, s.membership.gen, s.isMember(0))
		}
	}
}
