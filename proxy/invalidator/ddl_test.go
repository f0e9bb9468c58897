package invalidator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"edgecache/proxy/store"
)

// postsDDL is a posts table whose triggers log every change, as the
// origin's migrations make them.
var postsDDL = []string{
	"CREATE TABLE posts (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL) ENGINE=InnoDB",
	"CREATE TRIGGER posts_log_insert AFTER INSERT ON posts FOR EACH ROW INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('post/', NEW.id), 1)",
	"CREATE TRIGGER posts_log_update AFTER UPDATE ON posts FOR EACH ROW INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('post/', NEW.id), 0)",
	"CREATE TRIGGER posts_log_delete AFTER DELETE ON posts FOR EACH ROW INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('post/', OLD.id), 0)",
}

func (l *testLog) exec(stmts ...string) {
	l.t.Helper()
	for _, s := range stmts {
		if _, err := l.db.Exec(s); err != nil {
			l.t.Fatalf("%s: %v", s, err)
		}
	}
}

// ddlConfig checks the schema often and holds short leases, so that the
// tests wait less; nothing depends on the numbers.
func ddlConfig(t *testing.T, l *testLog) Config {
	cfg := testConfig(t, l)
	cfg.DDLInterval = 50 * time.Millisecond
	cfg.LeaseDuration = 200 * time.Millisecond
	cfg.PeerTimeout = 50 * time.Millisecond
	return cfg
}

func waitSchemaApplied(t *testing.T, inv *running, n uint64) {
	t.Helper()
	waitUntil(t, "the schema change is invalidated", func() bool { return inv.SchemaChangesApplied() >= n }, inv)
}

// A schema change that fires no trigger makes every entry recorded before
// it stale: the group is gone from memcached (created again with a new
// incarnation) or moved. Before the change the invalidator has recorded its
// first state (the first check finds invalidation_ddl empty: that counts as
// a change too).
func TestSchemaChangesInvalidateEverything(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ddl     []string
		missing float64 // triggers missing afterwards
	}{
		{"truncate", []string{"TRUNCATE TABLE posts"}, 0},
		{"restore without triggers", []string{"DROP TABLE posts", postsDDL[0], "INSERT INTO posts (id, body) VALUES (7, 'from the backup')"}, 3},
		{"rename", []string{"CREATE TABLE posts_new LIKE posts", "RENAME TABLE posts TO posts_old, posts_new TO posts"}, 3},
		{"trigger re-created", []string{"DROP TRIGGER posts_log_update", postsDDL[2]}, 0},
		{"invalidation_log truncated", []string{"TRUNCATE TABLE invalidation_log"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, st := startStore(t, 3*time.Second)
			l := newTestLog(t)
			l.exec(postsDDL...)
			l.exec("INSERT INTO posts (id, body) VALUES (7, 'cached')")
			inv := startInvalidator(t, ddlConfig(t, l), st, testLogger(t))
			waitSchemaApplied(t, inv, 1)
			waitUntil(t, "the insert is applied", func() bool { return l.rows() == 0 }, inv)
			before, _, err := st.Ensure(store.GroupKey("post/7"), 1)
			if err != nil {
				t.Fatal(err)
			}

			l.exec(tc.ddl...)
			waitSchemaApplied(t, inv, 2)
			after, created, err := st.Ensure(store.GroupKey("post/7"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !created && after.Validates(before.Incarnation, before.Epoch) {
				t.Errorf("an entry recorded at %+v before the change still validates against %+v", before, after)
			}
			// A check during the DDL may see a state in between (the table
			// gone for a moment): that is one more change found, not fewer.
			if got := inv.m.ddlDetected.Get(); got < 2 {
				t.Errorf("edgecache_invalidator_ddl_detected_total %d, want at least 2 (the first state, then the change)", got)
			}
			if got := inv.m.triggersMissing.Get(); got != tc.missing {
				t.Errorf("edgecache_invalidator_log_triggers_missing %v, want %v", got, tc.missing)
			}
			code, body := get(t, inv, "/readyz")
			if tc.missing > 0 && (code != http.StatusServiceUnavailable || !strings.Contains(body, "posts AFTER INSERT")) {
				t.Errorf("readyz %d %q with triggers missing, want 503 naming them", code, body)
			}
			if tc.missing == 0 && code != http.StatusOK {
				t.Errorf("readyz %d %q", code, body)
			}
		})
	}
}

// The leader records a state only after flushing for it: a leader that
// dies before it looks again leaves the change to the next one, which
// finds it in invalidation_ddl, however long nobody led.
func TestStandbyTakingOverInvalidatesAChangeItDidNotSee(t *testing.T) {
	_, st := startStore(t, 3*time.Second)
	l := newTestLog(t)
	l.exec(postsDDL...)
	cfg := ddlConfig(t, l)
	slow := cfg
	slow.DDLInterval = time.Hour // a looks once, when it starts leading
	a := startInvalidator(t, slow, st, testLogger(t))
	waitUntil(t, "a leads", a.Leading, a)
	waitSchemaApplied(t, a, 1)
	before, _, err := st.Ensure(store.GroupKey("post/7"), 1)
	if err != nil {
		t.Fatal(err)
	}

	l.exec("TRUNCATE TABLE posts")
	a.crash()
	b := startInvalidator(t, cfg, st, testLogger(t))
	waitUntil(t, "b leads", b.Leading, b)
	waitSchemaApplied(t, b, 1)
	after, created, err := st.Ensure(store.GroupKey("post/7"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !created && after.Validates(before.Incarnation, before.Epoch) {
		t.Errorf("after the takeover an entry recorded before the TRUNCATE still validates (%+v, %+v)", before, after)
	}
	if got := a.SchemaChangesApplied(); got != 1 {
		t.Errorf("a invalidated %d schema changes, want 1 (its first state only)", got)
	}
}

// A leader that dies while it flushes for a change has recorded nothing:
// the next leader flushes for it.
func TestLeaderDyingWhileFlushingLeavesTheChangeToTheNext(t *testing.T) {
	_, st := startStore(t, 3*time.Second)
	l := newTestLog(t)
	l.exec(postsDDL...)
	cfg := ddlConfig(t, l)
	recA := newRecorder()
	a := startInvalidator(t, cfg, recA, testLogger(t))
	waitSchemaApplied(t, a, 1)
	before, _, err := st.Ensure(store.GroupKey("post/7"), 1)
	if err != nil {
		t.Fatal(err)
	}

	release := recA.holdFlushes()
	l.exec("TRUNCATE TABLE posts")
	waitUntil(t, "a is flushing", func() bool { return recA.inFlightFlushes() == 1 }, recA)
	a.net.cut() // a dies in the middle of its flush
	release()
	a.stop()
	b := startInvalidator(t, cfg, st, testLogger(t))
	waitSchemaApplied(t, b, 1)
	after, created, err := st.Ensure(store.GroupKey("post/7"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !created && after.Validates(before.Incarnation, before.Epoch) {
		t.Errorf("after the takeover an entry recorded before the TRUNCATE still validates (%+v, %+v)", before, after)
	}
}

// A failover with no schema change in between flushes nothing: the state
// the old leader recorded is the new leader's too.
func TestFailoverWithoutSchemaChangeDoesNotFlush(t *testing.T) {
	l := newTestLog(t)
	l.exec(postsDDL...)
	cfg := ddlConfig(t, l)
	a := startInvalidator(t, cfg, newRecorder(), testLogger(t))
	waitSchemaApplied(t, a, 1)
	a.crash()
	recB := newRecorder()
	b := startInvalidator(t, cfg, recB, testLogger(t))
	waitUntil(t, "b leads", b.Leading, b)
	// b checks the schema before it reads the log: once a row is applied,
	// its first check is done.
	l.exec("INSERT INTO posts (body) VALUES ('after the failover')")
	waitUntil(t, "b applies the insert", func() bool { _, n := b.Applied(); return n == 1 }, b)
	if n := recB.flushCount(); n != 0 {
		t.Errorf("b flushed memcached %d times after a failover with no schema change", n)
	}
}

// A schema the check cannot read is loud (readyz, a metric) but stops
// nothing: the leader keeps its lock and applies the log.
func TestSchemaCheckFailingKeepsApplyingTheLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ddl    []string
		readyz string
	}{
		{"no invalidation_ddl", []string{"DROP TABLE invalidation_ddl"}, "invalidation_ddl"},
		{"not InnoDB", []string{"ALTER TABLE posts ENGINE=MyISAM"}, "no InnoDB table id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLog(t)
			l.exec(postsDDL...)
			l.exec(tc.ddl...)
			inv := startInvalidator(t, ddlConfig(t, l), newRecorder(), testLogger(t))
			waitUntil(t, "the check fails", func() bool { return inv.m.ddlCheckFailures.Get() > 0 }, inv)
			l.append(entry{"post/1", 2})
			waitUntil(t, "the row is applied", func() bool { _, n := inv.Applied(); return n == 1 }, inv)
			if code, body := get(t, inv, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, tc.readyz) {
				t.Errorf("readyz %d %q, want 503 naming %q", code, body, tc.readyz)
			}
			if lost := inv.m.leaderLost.Get(); lost != 0 {
				t.Errorf("the leader stepped down %d times over a schema it cannot check", lost)
			}
		})
	}
}

// A flush that fails (memcached stalled) records nothing: the change is
// retried until memcached answers, then invalidated.
func TestSchemaChangeWaitsForMemcached(t *testing.T) {
	mc, st := startStore(t, 100*time.Millisecond)
	l := newTestLog(t)
	l.exec(postsDDL...)
	inv := startInvalidator(t, ddlConfig(t, l), st, testLogger(t))
	waitSchemaApplied(t, inv, 1)
	if err := mc.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			mc.Resume()
		}
	}()
	l.exec("TRUNCATE TABLE posts")
	waitUntil(t, "a flush fails", func() bool { return inv.m.ddlFlushFailures.Get() > 0 }, inv)
	if n := inv.SchemaChangesApplied(); n != 1 {
		t.Fatalf("%d schema changes recorded while memcached could not be flushed, want 1", n)
	}
	if err := mc.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitSchemaApplied(t, inv, 2)
}

// POST /invalidate-all flushes memcached on demand, on a standby too.
func TestAdminInvalidateAll(t *testing.T) {
	_, st := startStore(t, 3*time.Second)
	l := newTestLog(t)
	cfg := ddlConfig(t, l)
	leader := startInvalidator(t, cfg, newRecorder(), testLogger(t))
	waitUntil(t, "it leads", leader.Leading, leader)
	standby := startInvalidator(t, cfg, st, testLogger(t))
	waitUntil(t, "the other stands by", standby.standingBy, standby)
	before, _, err := st.Ensure(store.GroupKey("post/7"), 1)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	standby.Handler().ServeHTTP(w, httptest.NewRequest("POST", "/invalidate-all", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("POST /invalidate-all: %d %q", w.Code, w.Body)
	}
	after, created, err := st.Ensure(store.GroupKey("post/7"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !created && after.Validates(before.Incarnation, before.Epoch) {
		t.Errorf("an entry recorded before invalidate-all still validates (%+v, %+v)", before, after)
	}
}
