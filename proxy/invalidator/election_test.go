package invalidator

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Of three instances on one lock exactly one leads; the others stand by and
// know which connection holds it.
func TestOneLeaderAmongThree(t *testing.T) {
	l := newTestLog(t)
	cfg := testConfig(t, l)
	var all []*running
	var srcs []changer
	for range 3 {
		r := startInvalidator(t, cfg, newRecorder(), testLogger(t))
		all = append(all, r)
		srcs = append(srcs, r)
	}
	waitUntil(t, "one leads and two stand by", func() bool {
		leading, standing := 0, 0
		for _, r := range all {
			if r.Leading() {
				leading++
			} else if r.standingBy() {
				standing++
			}
		}
		return leading == 1 && standing == 2
	}, srcs...)
	holder := lockHolder(t, l, cfg)
	for _, r := range all {
		r.mu.Lock()
		leading, seen := r.leading, r.holder
		r.mu.Unlock()
		if !leading && seen != holder {
			t.Errorf("a standby saw connection %d holding the lock, the server says %d", seen, holder)
		}
	}
}

// A stopped leader (SIGTERM) releases its lock before Run returns.
func TestStopReleasesTheLock(t *testing.T) {
	l := newTestLog(t)
	cfg := testConfig(t, l)
	r := startInvalidator(t, cfg, newRecorder(), testLogger(t))
	waitUntil(t, "it leads", r.Leading, r)
	if lockHolder(t, l, cfg) == 0 {
		t.Fatal("leading without the lock")
	}
	r.stop()
	if h := lockHolder(t, l, cfg); h != 0 {
		t.Fatalf("lock still held by connection %d after Run returned", h)
	}
	if r.Leading() {
		t.Fatal("still says it leads")
	}
}

// stream writes transactions of three log rows each, as the origin's
// triggers do, until stopped, and remembers what it committed.
type stream struct {
	l         *testLog
	stopping  chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	committed map[string]uint64 // group: highest version committed
	n         atomic.Int64      // transactions committed
}

func startStream(t *testing.T, l *testLog, every time.Duration) *stream {
	s := &stream{l: l, stopping: make(chan struct{}), done: make(chan struct{}), committed: map[string]uint64{}}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := uint64(1); ; i++ {
			select {
			case <-s.stopping:
				return
			case <-tick.C:
			}
			entries := []entry{
				{fmt.Sprintf("post/%d", i), i},
				{fmt.Sprintf("user/%d", i%50), i},
				{fmt.Sprintf("user/%d/posts", i%50), i},
			}
			if _, err := l.tryAppend(entries...); err != nil {
				t.Error(err)
				return
			}
			s.mu.Lock()
			for _, e := range entries {
				s.committed[e.group] = max(s.committed[e.group], e.version)
			}
			s.mu.Unlock()
			s.n.Add(1)
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *stream) stop() {
	select {
	case <-s.stopping:
	default:
		close(s.stopping)
	}
	<-s.done
}

// Two instances share the log under a stream of writes. The leader's
// connection is killed from the server side, then the new leader crashes
// (its sockets close under it, no clean-up). Each time the other instance
// takes over, and in the end every committed row was moved at least once,
// at its version or later, and the log is empty.
func TestFailoverMovesEveryRow(t *testing.T) {
	l := newTestLog(t)
	cfg := testConfig(t, l)
	recs := []*recorder{newRecorder(), newRecorder()}
	a := startInvalidator(t, cfg, recs[0], testLogger(t))
	waitUntil(t, "a leads", a.Leading, a)
	b := startInvalidator(t, cfg, recs[1], testLogger(t))
	waitUntil(t, "b stands by", b.standingBy, b)
	w := startStream(t, l, 3*time.Millisecond)
	waitUntil(t, "a applies the stream", func() bool { _, n := a.Applied(); return n >= 150 }, a)

	// 1. KILL the leader's connection. Both instances contend again: a
	// reconnects, b was waiting. Either may win.
	killed := lockHolder(t, l, cfg)
	gainedA := a.m.leaderGained.Get()
	start := time.Now()
	if _, err := l.db.Exec(fmt.Sprintf("KILL CONNECTION %d", killed)); err != nil {
		t.Fatal(err)
	}
	var leader, standby *running
	waitUntil(t, "a new session leads", func() bool {
		switch {
		case b.Leading():
			leader, standby = b, a
		case a.Leading() && a.m.leaderGained.Get() > gainedA:
			leader, standby = a, b
		default:
			return false
		}
		return true
	}, a, b)
	afterKill := time.Since(start)
	waitUntil(t, "the other stands by", standby.standingBy, standby)
	_, applied := leader.Applied()
	waitUntil(t, "the new leader applies the stream", func() bool { _, n := leader.Applied(); return n >= applied+150 }, leader)

	// 2. Crash the new leader: its sockets close as a killed process's do.
	start = time.Now()
	leader.crash()
	waitUntil(t, "the standby takes over", standby.Leading, standby)
	afterCrash := time.Since(start)
	_, applied = standby.Applied()
	waitUntil(t, "the survivor applies the stream", func() bool { _, n := standby.Applied(); return n >= applied+150 }, standby)

	w.stop()
	waitUntil(t, "the log is empty", func() bool { return l.rows() == 0 }, standby)
	missing := 0
	for g, v := range w.committed {
		if moved := max(recs[0].version(g), recs[1].version(g)); moved < v {
			missing++
			if missing <= 5 {
				t.Errorf("%s committed at version %d, moved to %d at most", g, v, moved)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d groups never moved to their committed version", missing, len(w.committed))
	}
	t.Logf("%d transactions, %d groups; takeover after KILL %s, after crash %s",
		w.n.Load(), len(w.committed), afterKill.Round(time.Millisecond), afterCrash.Round(time.Millisecond))
}

// A leader paused in the middle of a batch (its moves held, its sockets
// frozen open, as SIGSTOP leaves them) loses its session to wait_timeout;
// the standby takes over and applies the paused leader's batch too. When
// the old leader resumes it finishes the batch in hand at most, notices its
// connection is gone, and stands by: it moves nothing else.
func TestPausedLeaderStepsDown(t *testing.T) {
	l := newTestLog(t)
	cfg := testConfig(t, l)
	cfg.SessionTimeout = 2 * time.Second
	cfg.PingInterval = 500 * time.Millisecond
	recA, recB := newRecorder(), newRecorder()
	a := startInvalidator(t, cfg, recA, testLogger(t))
	waitUntil(t, "a leads", a.Leading, a)
	b := startInvalidator(t, cfg, recB, testLogger(t))
	waitUntil(t, "b stands by", b.standingBy, b)

	release := recA.holdMoves()
	l.append(entry{"post/in-hand", 1})
	waitUntil(t, "a is moving its batch", func() bool { return recA.inFlightMoves() == 1 }, recA)
	a.net.freeze()
	paused := time.Now()

	waitUntil(t, "b takes over once the server drops a's session", b.Leading, b)
	takeover := time.Since(paused)
	waitUntil(t, "b applies the batch a holds", func() bool { return recB.hasMoved("post/in-hand") }, recB)
	l.append(entry{"post/while-paused", 2})
	waitUntil(t, "b applies new rows", func() bool { return recB.hasMoved("post/while-paused") }, recB)

	a.net.thaw()
	release()
	waitUntil(t, "a stands by", a.standingBy, a)
	waitUntil(t, "a's move in hand returns", func() bool { return recA.inFlightMoves() == 0 }, recA)
	l.append(entry{"post/after", 3})
	waitUntil(t, "b applies later rows and the log is empty", func() bool {
		return recB.hasMoved("post/after") && l.rows() == 0
	}, recB, b)

	if calls := recA.callsSnapshot(); !slices.Equal(calls, []string{"post/in-hand"}) {
		t.Fatalf("a moved %v; after losing its lock it may only finish the batch in hand [post/in-hand]", calls)
	}
	if lost := a.m.leaderLost.Get(); lost != 1 {
		t.Errorf("a lost leadership %d times, want 1", lost)
	}
	t.Logf("takeover after the pause: %s (session timeout %s)", takeover.Round(time.Millisecond), cfg.SessionTimeout)
}
