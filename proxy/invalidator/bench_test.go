package invalidator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// noMove is a Mover that does nothing: what is left is the invalidator's
// own cost (read, dedupe, delete).
type noMove struct{}

func (noMove) Move(string, uint64) error { return nil }
func (noMove) FlushAll() error           { return nil }

// BenchmarkApplyBacklog drains a backlog of b.N rows, one group each, with a
// Mover that does nothing: the invalidator's own cost.
func BenchmarkApplyBacklog(b *testing.B) { benchmarkBacklog(b, noMove{}) }

// BenchmarkApplyBacklogMemcached is the same through the store to a real
// memcached (a get and a compare-and-swap per group).
func BenchmarkApplyBacklogMemcached(b *testing.B) {
	_, st := startStore(b, 3*time.Second)
	benchmarkBacklog(b, st)
}

func benchmarkBacklog(b *testing.B, mover Mover) {
	l := newTestLog(b)
	const chunk = 1000
	for start := 0; start < b.N; start += chunk {
		n := min(chunk, b.N-start)
		args := make([]any, 0, 2*n)
		for i := range n {
			args = append(args, fmt.Sprintf("post/%d", start+i), start+i)
		}
		q := "INSERT INTO invalidation_log (grp, version) VALUES " + strings.Repeat("(?, ?),", n-1) + "(?, ?)"
		if _, err := l.db.Exec(q, args...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	inv := startInvalidator(b, testConfig(b, l), mover, testLogger(b))
	waitUntil(b, "the backlog is applied", func() bool { _, n := inv.Applied(); return n == uint64(b.N) }, inv)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "groups/s")
}

// timedMover records when each group first moved.
type timedMover struct {
	mu    sync.Mutex
	moved map[string]time.Time
	n     atomic.Int64
}

func (m *timedMover) Move(group string, _ uint64) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.moved[group]; !ok {
		m.moved[group] = now
		m.n.Add(1)
	}
	return nil
}

func (m *timedMover) FlushAll() error { return nil }

// BenchmarkCommitToApply writes b.N transactions of three log rows each at
// 400 a second (the sized average write rate), open loop, and reports the
// delay from each COMMIT being sent to its group's move: p50 and p99.
// For a run of 10 s: go test -run '^$' -bench CommitToApply -benchtime 4000x
func BenchmarkCommitToApply(b *testing.B) {
	const rate = 400
	l := newTestLog(b)
	mover := &timedMover{moved: map[string]time.Time{}}
	inv := startInvalidator(b, testConfig(b, l), mover, testLogger(b))
	waitUntil(b, "it leads", inv.Leading, inv)

	committing := make([]time.Time, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 8 { // writers, so that one slow commit does not delay the next slot
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
				tx, err := l.db.Begin()
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := insertIn(tx, entry{fmt.Sprintf("post/%d", i), 1}, entry{fmt.Sprintf("user/%d", i), 1}, entry{fmt.Sprintf("user/%d/posts", i), 1}); err != nil {
					b.Error(err)
					return
				}
				committing[i] = time.Now()
				if err := tx.Commit(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	writing := time.Since(start)
	waitUntil(b, "every group is moved", func() bool { _, n := inv.Applied(); return n == uint64(3*b.N) }, inv)
	b.StopTimer()

	delays := make([]time.Duration, 0, 3*b.N)
	mover.mu.Lock()
	for i := range b.N {
		for _, g := range []string{"post/%d", "user/%d", "user/%d/posts"} {
			delays = append(delays, mover.moved[fmt.Sprintf(g, i)].Sub(committing[i]))
		}
	}
	mover.mu.Unlock()
	slices.Sort(delays)
	pct := func(p float64) float64 {
		return float64(delays[int(p*float64(len(delays)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(b.N)/writing.Seconds(), "tx/s")
}

// BenchmarkSchemaCheck is the cost of one look at the schema (the leader's
// every INVALIDATOR_DDL_INTERVAL): the statements of ddlWatch.read on a
// database with the test's posts table and its triggers.
func BenchmarkSchemaCheck(b *testing.B) {
	l := newTestLog(b)
	for _, s := range postsDDL {
		if _, err := l.db.Exec(s); err != nil {
			b.Fatal(err)
		}
	}
	cfg := testConfig(b, l)
	inv, err := New(cfg, noMove{}, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer inv.Close()
	s, err := openSession(context.Background(), inv.db, cfg.LockName, cfg.SessionTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	w := newDDLWatch(inv)
	b.ResetTimer()
	for range b.N {
		if _, _, _, err := w.read(s); err != nil {
			b.Fatal(err)
		}
	}
}
