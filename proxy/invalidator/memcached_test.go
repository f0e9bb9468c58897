package invalidator

import (
	"context"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"

	"edgecache/deploy/localstack"
	"edgecache/proxy/store"
)

// startStore starts a private memcached and a store over it, probing down
// nodes as the binary does.
func startStore(t testing.TB, timeout time.Duration) (*localstack.Memcached, *store.Store) {
	t.Helper()
	mc, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mc.Stop)
	st, err := store.New(store.Config{Nodes: []string{mc.Addr}, Timeout: timeout, MaxIdleConns: 64, ProbeInterval: 20 * time.Millisecond},
		zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go st.Run(stop)
	t.Cleanup(func() { close(stop) })
	return mc, st
}

// With the real store as Mover, an entry recorded against a group before
// its row is applied no longer validates after, and the group carries the
// version the row named.
func TestAppliedRowsInvalidateInMemcached(t *testing.T) {
	_, st := startStore(t, 3*time.Second)
	before, _, err := st.Ensure(store.GroupKey("post/7"), 1)
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLog(t)
	l.append(entry{"post/7", 2}, entry{"user/42/posts", 5})
	inv := startInvalidator(t, testConfig(t, l), st, testLogger(t))
	waitUntil(t, "the rows are applied", func() bool { _, n := inv.Applied(); return n == 2 }, inv)

	after, created, err := st.Ensure(store.GroupKey("post/7"), 0)
	if err != nil || created {
		t.Fatalf("post/7: err %v, created %v", err, created)
	}
	if after.Validates(before.Incarnation, before.Epoch) {
		t.Errorf("an entry recorded at %+v still validates against %+v", before, after)
	}
	if after.Origin != 2 {
		t.Errorf("post/7 carries origin version %d, want 2", after.Origin)
	}
	posts, created, err := st.Ensure(store.GroupKey("user/42/posts"), 0)
	if err != nil || created || posts.Origin != 5 {
		t.Errorf("user/42/posts: %+v, created %v, err %v; want it moved to origin version 5", posts, created, err)
	}
}

// memcached stalls (SIGSTOP): moves fail, the row stays in the log; once it
// answers again the row is applied.
func TestMemcachedStallDelaysButLosesNothing(t *testing.T) {
	mc, st := startStore(t, 100*time.Millisecond)
	l := newTestLog(t)
	cfg := testConfig(t, l)
	cfg.RetryMax = 200 * time.Millisecond
	logs := newWatchedLogs()
	inv := startInvalidator(t, cfg, st, logs.logger)
	waitUntil(t, "it leads", inv.Leading, inv)

	if err := mc.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			mc.Resume()
		}
	}()
	l.append(entry{"post/1", 3})
	waitUntil(t, "the move fails", func() bool { return logs.FilterMessageSnippet("moves failing").Len() > 0 }, logs)
	if n := l.rows(); n != 1 {
		t.Fatalf("%d rows in the log while memcached is stalled, want 1", n)
	}
	if err := mc.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitUntil(t, "the row is applied", func() bool { return l.rows() == 0 }, inv)
	g, created, err := st.Ensure(store.GroupKey("post/1"), 0)
	if err != nil || created || g.Origin != 3 {
		t.Fatalf("post/1: %+v, created %v, err %v; want it moved to origin version 3", g, created, err)
	}
}
