package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"

	"edgecache/deploy/localstack"
)

var mc *localstack.Memcached

func TestMain(m *testing.M) {
	if localstack.FuzzWorker() {
		os.Exit(m.Run())
	}
	var err error
	mc, err = localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memcached:", err)
		os.Exit(1)
	}
	code := m.Run()
	mc.Stop()
	os.Exit(code)
}

func newStore(t testing.TB, nodes ...string) *Store {
	t.Helper()
	if len(nodes) == 0 {
		nodes = []string{mc.Addr}
	}
	s, err := New(Config{Nodes: nodes, Timeout: 3 * time.Second, MaxIdleConns: 64, ProbeInterval: 20 * time.Millisecond},
		zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func value(t *testing.T, c *memcache.Client, key string) Group {
	t.Helper()
	it, err := c.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := ParseGroup(it.Value)
	if !ok {
		t.Fatalf("%s: unparsable group value %q", key, it.Value)
	}
	return g
}

// storeOverItsOwnNode is a running store over a memcached node of its own,
// with short timeouts, for tests that stop the node.
func storeOverItsOwnNode(t *testing.T) (*localstack.Memcached, *Store) {
	t.Helper()
	node, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	s, err := New(Config{Nodes: []string{node.Addr}, Timeout: 100 * time.Millisecond, MaxIdleConns: 8, ProbeInterval: 20 * time.Millisecond},
		zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go s.Run(stop)
	return node, s
}

// Whatever round a lookup joins, it sees every value stored before it was
// asked for (the property the read-after-write guarantee rests on), and
// only its own keys.
func TestLookupSeesEveryEarlierWrite(t *testing.T) {
	s := newStore(t)
	direct := memcache.New(mc.Addr)
	shared := "lk:shared:" + t.Name()
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := "lk:" + t.Name() + ":" + strconv.Itoa(w)
			for i := range 100 {
				v := strconv.Itoa(i)
				if err := direct.Set(&memcache.Item{Key: own, Value: []byte(v)}); err != nil {
					errs <- err.Error()
					return
				}
				items, unavailable := s.Lookup([]string{own, shared})
				if unavailable {
					errs <- "unavailable"
					return
				}
				if it := items[own]; it == nil || string(it.Value) != v {
					errs <- own + ": stored " + v + " before the read, did not read it back"
					return
				}
				if len(items) > 2 {
					errs <- "items of other requests leaked in"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := s.m.lookups.Get(); n != 1600 {
		t.Fatalf("%d lookups counted, want 1600", n)
	}
}

// A node that stalls (SIGSTOP) for longer than the timeout during a move:
// the move fails, is queued, and is made as soon as the node answers again
// — although one failure never marks the node down.
func TestMissedMoveReplayedWhenNodeAnswers(t *testing.T) {
	node, s := storeOverItsOwnNode(t)
	name := "stall/" + t.Name()
	key := GroupKey(name)
	before, _, err := s.Ensure(key, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Pause(); err != nil {
		t.Fatal(err)
	}
	err = s.MoveOrQueue(name, 2)
	node.Resume()
	if err == nil {
		t.Fatal("a move against a stopped node succeeded")
	}
	if !s.NodeUp(0) {
		t.Fatal("one failed move marked the node down; the test needs it up")
	}
	c := memcache.New(node.Addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		g := value(t, c, key)
		if !g.Validates(before.Incarnation, before.Epoch) {
			if g.Origin != 2 {
				t.Fatalf("replayed move: %+v, want origin 2", g)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the missed move was never replayed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.missed.count(); n != 0 {
		t.Fatalf("%d moves still queued after the replay", n)
	}
}

func TestParseGroup(t *testing.T) {
	for in, ok := range map[string]bool{
		"1 1 0": true, "18446744073709551615 3 9": true, "1 2 9 9": true,
		"": false, "1 1": false, "0 1 0": false, "1 0 0": false, "1 1 0 0 0": false, "1  1 0": false,
		" 1 1 0": false, "1 1 0 ": false, "a 1 0": false, "1 1 -1": false,
		"1 3 0 0 2": true, "1 3 9 9 2": true, "1 3 0 0 3": false, "1 3 0 0 4": false, "1 3 0 0 2 1": false,
	} {
		if _, got := ParseGroup([]byte(in)); got != ok {
			t.Errorf("ParseGroup(%q) ok = %v, want %v", in, got, ok)
		}
	}
	for _, g := range []Group{{Incarnation: 5, Epoch: 7, Origin: 9, Hard: 7}, {Incarnation: 5, Epoch: 7, Origin: 9, Moved: 8, Hard: 7},
		{Incarnation: 5, Epoch: 7, Origin: 9, Hard: 4}, {Incarnation: 5, Epoch: 7, Origin: 9, Moved: 8, Hard: 4}} {
		if back, ok := ParseGroup(g.Bytes()); !ok || back != g {
			t.Fatalf("round trip: %+v -> %q -> %+v", g, g.Bytes(), back)
		}
	}
}

// A soft purge leaves what it found stale, not invalid; a hard move after
// it invalidates everything recorded before, and writes no fifth field:
// what code older than soft purges reads.
func TestSoftPurgeAndHardMoves(t *testing.T) {
	g := NewGroup(0).Next(3) // epoch 2, hard
	soft := g.SoftNext().SoftNext()
	if soft.Validates(g.Incarnation, 2) || !soft.SoftPurged(g.Incarnation, 2) || soft.SoftPurged(g.Incarnation, 1) {
		t.Fatalf("after two soft purges %+v: an entry recorded at epoch 2 must be soft-purged, at epoch 1 invalid", soft)
	}
	hard := soft.Next(0)
	if hard.SoftPurged(g.Incarnation, 2) || hard.SoftPurged(g.Incarnation, 4) || !hard.Validates(g.Incarnation, 5) {
		t.Fatalf("after a hard move %+v: nothing recorded before it may be served", hard)
	}
	if got := string(hard.Bytes()); strings.Count(got, " ") > 3 {
		t.Fatalf("a hard move wrote %q, want at most four fields", got)
	}
}

func FuzzParseGroup(f *testing.F) {
	f.Add([]byte("1 2 3"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, ok := ParseGroup(b)
		if !ok {
			return
		}
		if back, ok := ParseGroup(g.Bytes()); !ok || back != g {
			t.Fatalf("%q parsed to %+v, which does not round-trip", b, g)
		}
	})
}

// A memcached node that dies: group values are read from their replica on
// another node, which every move updates too, and entries are stored at
// their second place — so reads keep being validated and served while the
// node is gone, and a write made meanwhile is seen.
func TestDeadNodeFallsBackToReplicasAndSecondPlaces(t *testing.T) {
	a, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	b, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	s, err := New(Config{Nodes: []string{a.Addr, b.Addr}, Timeout: 500 * time.Millisecond, MaxIdleConns: 8, ProbeInterval: time.Hour},
		zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	// A group and an entry whose first place is node a.
	var name, ekey string
	for i := 0; name == "" || ekey == ""; i++ {
		if k := GroupKey(fmt.Sprint("dead/", i)); name == "" && s.NodeOf(k) == 0 {
			name = fmt.Sprint("dead/", i)
		}
		if k := EntryKey(fmt.Sprint("http://x/", i)); ekey == "" && s.NodeOf(k) == 0 {
			ekey = k
		}
	}
	gk := GroupKey(name)
	if _, _, err := s.Ensure(gk, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Move(name, 2); err != nil { // both places now hold a value
		t.Fatal(err)
	}
	a.Stop()
	for s.NodeUp(0) { // three failures mark it down
		s.GetMulti([]string{gk})
	}
	items, unavailable := s.GetMulti([]string{gk})
	if items[gk] == nil {
		t.Fatalf("with node a down, the group's replica was not read (unavailable %v)", unavailable)
	}
	replica, ok := ParseGroup(items[gk].Value)
	if len(unavailable) != 0 || !ok {
		t.Fatalf("with node a down, the group's replica was not read: %v unavailable, %v", unavailable, items[gk])
	}
	if err := s.MoveOrQueue(name, 3); err == nil {
		t.Fatal("a move with one place down reported success: the write's answer must say pending")
	}
	items, _ = s.GetMulti([]string{gk})
	after, _ := ParseGroup(items[gk].Value)
	if after.Validates(replica.Incarnation, replica.Epoch) || after.Origin != 3 {
		t.Fatalf("the replica did not take the move made while node a was down: %+v then %+v", replica, after)
	}
	if err := s.Set(&memcache.Item{Key: ekey, Value: []byte("entry")}); err != nil {
		t.Fatalf("an entry whose node is down is stored at its second place: %v", err)
	}
	items, unavailable = s.GetMulti([]string{ekey})
	if it := items[ekey]; it == nil || string(it.Value) != "entry" || len(unavailable) != 0 {
		t.Fatalf("the entry stored at its second place was not read back under its key: %v, unavailable %v", items, unavailable)
	}
	if s.missed.count() != 1 {
		t.Fatalf("%d moves queued for the dead node, want the 1 it missed", s.missed.count())
	}
}

func FuzzParseVersion(f *testing.F) {
	f.Add("HD c12 f7 s40")
	f.Add("EN")
	f.Add("HD c1 f4294967296 s1")
	f.Fuzz(func(t *testing.T, line string) {
		v, err := parseVersion(line)
		if err == nil && line == "EN" {
			t.Fatal("a miss read as a version")
		}
		_ = v
	})
}

func TestParseVersion(t *testing.T) {
	v, err := parseVersion("HD c12 f7 s40")
	if err != nil || v != (Version{CAS: 12, Flags: 7, Size: 40}) {
		t.Fatalf("%+v %v", v, err)
	}
	for _, bad := range []string{"", "HD", "HD c1 f2", "VA 3 c1 f2 s3", "HD c1 f4294967296 s1", "HD cx f1 s1", "HD c1 f1 s1 t1", "HD c f1 s1"} {
		if _, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
}
