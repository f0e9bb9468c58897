package invalidator

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Transactions commit out of id order: one holds the lowest id open while
// twenty others, three rows each, commit concurrently. Every row is applied
// once committed, the late one included, and deleted afterwards; deleting
// never waits on the open transaction's row.
func TestOutOfOrderCommitsAreAllApplied(t *testing.T) {
	l := newTestLog(t)
	rec := newRecorder()
	inv := startInvalidator(t, testConfig(t, l), rec, testLogger(t))
	waitUntil(t, "it leads", inv.Leading, inv)

	held, err := l.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback()
	heldIDs, err := insertIn(held, entry{"post/held", 1})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]uint64{}
	var wg sync.WaitGroup
	for w := range 20 {
		entries := []entry{
			{fmt.Sprintf("post/%d", w), uint64(w + 1)},
			{fmt.Sprintf("user/%d", w), uint64(w + 2)},
			{fmt.Sprintf("user/%d/posts", w), uint64(w + 3)},
		}
		for _, e := range entries {
			want[e.group] = e.version
		}
		wg.Go(func() {
			if _, err := l.tryAppend(entries...); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	waitUntil(t, "every committed row is applied", func() bool {
		_, rows := inv.Applied()
		return rows == 60
	}, inv)
	for g := range want {
		if !rec.hasMoved(g) {
			t.Fatalf("%s applied without being moved", g)
		}
	}
	if maxID, _ := inv.Applied(); maxID <= heldIDs[0] {
		t.Fatalf("highest id applied %d, want above the held id %d", maxID, heldIDs[0])
	}
	// The reader is now past the held id: a reader that kept "applied up to
	// maxID" would never look at it again.
	if rec.hasMoved("post/held") {
		t.Fatal("moved a row of a transaction that has not committed")
	}
	if err := held.Commit(); err != nil {
		t.Fatal(err)
	}
	want["post/held"] = 1
	waitUntil(t, "the late commit is applied", func() bool { _, rows := inv.Applied(); return rows == 61 }, inv)
	if n := l.rows(); n != 0 {
		t.Fatalf("%d rows left in the log, want none", n)
	}

	for g, v := range want {
		if got := rec.version(g); got != v {
			t.Errorf("%s moved to version %d, want %d", g, got, v)
		}
	}
}

// Rows of one group in one batch make one move, with the highest version.
func TestBatchMovesEachGroupOnceAtItsHighestVersion(t *testing.T) {
	l := newTestLog(t)
	l.append(entry{"post/1", 5}, entry{"user/1", 0}, entry{"post/1", 9})
	l.append(entry{"post/1", 7}, entry{"user/1", 3})
	rec := newRecorder()
	inv := startInvalidator(t, testConfig(t, l), rec, testLogger(t))
	waitUntil(t, "the rows are applied", func() bool { _, rows := inv.Applied(); return rows == 5 }, inv)
	if n := l.rows(); n != 0 {
		t.Fatalf("%d rows left in the log, want none", n)
	}

	calls := rec.callsSnapshot()
	if len(calls) != 2 {
		t.Fatalf("moves %v, want one per group", calls)
	}
	if p, u := rec.version("post/1"), rec.version("user/1"); p != 9 || u != 3 {
		t.Fatalf("moved post/1 to %d and user/1 to %d, want 9 and 3", p, u)
	}
}

// A group whose move fails keeps its rows in the log, does not hold up the
// groups behind it (with four rows a batch, the first two batches hold
// nothing but failing rows), is retried, and is applied once the mover
// recovers. The failure is logged once, not once per row or retry.
func TestFailedMovesStayInTheLogUntilTheMoverRecovers(t *testing.T) {
	l := newTestLog(t)
	var down, up []string
	for i := range 8 {
		down = append(down, fmt.Sprintf("down/%d", i))
		l.append(entry{down[i], 1})
	}
	for i := range 6 {
		up = append(up, fmt.Sprintf("up/%d", i))
		l.append(entry{up[i], 1})
	}
	rec := newRecorder()
	errDown := errors.New("memcached node down")
	rec.setFail(func(g string) error {
		if strings.HasPrefix(g, "down/") {
			return errDown
		}
		return nil
	})
	cfg := testConfig(t, l)
	cfg.Batch = 4
	core, logs := observer.New(zapcore.InfoLevel)
	inv := startInvalidator(t, cfg, rec, zap.New(core))

	waitUntil(t, "the healthy groups are applied past the failing ones", func() bool {
		for _, g := range up {
			if !rec.hasMoved(g) {
				return false
			}
		}
		return true
	}, rec)
	// The recorder counts an attempt before the invalidator counts its
	// failure: wait for both.
	waitUntil(t, "every failing group is retried, and each failure counted", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, g := range down {
			if rec.attempts[g] < 3 {
				return false
			}
		}
		return inv.m.moveFailures.Get() >= uint64(3*len(down))
	}, rec)
	if n := l.rows(); n != len(down) {
		t.Fatalf("%d rows left in the log, want the %d whose move failed", n, len(down))
	}

	rec.setFail(nil)
	waitUntil(t, "the failed rows are applied after recovery", func() bool { return l.rows() == 0 }, inv)
	for _, g := range down {
		if !rec.hasMoved(g) {
			t.Errorf("%s never moved", g)
		}
	}
	if n := logs.FilterMessageSnippet("moves failing").Len(); n != 1 {
		t.Errorf("failure logged %d times, want once", n)
	}
	if n := logs.FilterMessageSnippet("moves recovered").Len(); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}
}

// A statement the server refuses (here: the table is missing) is retried
// on the same session; the leader keeps its lock.
func TestServerErrorsKeepLeadership(t *testing.T) {
	l := newTestLog(t)
	if _, err := l.db.Exec("DROP TABLE invalidation_log"); err != nil {
		t.Fatal(err)
	}
	logs := newWatchedLogs()
	rec := newRecorder()
	inv := startInvalidator(t, testConfig(t, l), rec, logs.logger)
	waitUntil(t, "reads fail", func() bool { return logs.FilterMessageSnippet("statements failing").Len() > 0 }, logs)
	if _, err := l.db.Exec(logDDL); err != nil {
		t.Fatal(err)
	}
	l.append(entry{"post/1", 1})
	waitUntil(t, "the row is applied", func() bool { return l.rows() == 0 && rec.hasMoved("post/1") }, inv, rec)
	if gained, lost := inv.m.leaderGained.Get(), inv.m.leaderLost.Get(); gained != 1 || lost != 0 {
		t.Errorf("leadership gained %d and lost %d times, want 1 and 0", gained, lost)
	}
	waitUntil(t, "recovery is logged", func() bool { return logs.FilterMessageSnippet("answered again").Len() == 1 }, logs)
}

// watchedLogs are observed logs with a Changed signal per entry.
type watchedLogs struct {
	*observer.ObservedLogs
	logger  *zap.Logger
	mu      sync.Mutex
	changed chan struct{}
}

func newWatchedLogs() *watchedLogs {
	core, logs := observer.New(zapcore.DebugLevel)
	w := &watchedLogs{ObservedLogs: logs, changed: make(chan struct{})}
	w.logger = zap.New(zapcore.RegisterHooks(core, func(zapcore.Entry) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		close(w.changed)
		w.changed = make(chan struct{})
		return nil
	}))
	return w
}

func (w *watchedLogs) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}
