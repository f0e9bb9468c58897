package invalidator

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, inv *running, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	inv.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return w.Code, w.Body.String()
}

// With no database to reach the process is alive but not ready.
func TestAdminNotReadyWithoutDatabase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := defaultConfig(t)
	cfg.MySQLDSN = "edgecache@tcp(" + addr + ")/edgecache?timeout=1s"
	cfg.LockName = "edgecache.invalidator.unreachable"
	inv := startInvalidator(t, cfg, newRecorder(), testLogger(t))
	waitUntil(t, "it fails to connect", func() bool {
		inv.mu.Lock()
		defer inv.mu.Unlock()
		return inv.dbErr != nil
	}, inv)
	if code, body := get(t, inv, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz %d %q", code, body)
	}
	if code, body := get(t, inv, "/readyz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "database: ") {
		t.Errorf("readyz %d %q, want 503 naming the database", code, body)
	}
}

// Leader and standby are both ready, and say which they are; the metrics
// tell them apart and count what the leader applied.
func TestAdminLeaderAndStandby(t *testing.T) {
	l := newTestLog(t)
	cfg := testConfig(t, l)
	leader := startInvalidator(t, cfg, newRecorder(), testLogger(t))
	waitUntil(t, "it leads", leader.Leading, leader)
	standby := startInvalidator(t, cfg, newRecorder(), testLogger(t))
	waitUntil(t, "the other stands by", standby.standingBy, standby)

	if code, body := get(t, leader, "/readyz"); code != http.StatusOK || body != "leader\n" {
		t.Errorf("leader readyz %d %q", code, body)
	}
	want := fmt.Sprintf("standby: lock held by connection %d\n", lockHolder(t, l, cfg))
	if code, body := get(t, standby, "/readyz"); code != http.StatusOK || body != want {
		t.Errorf("standby readyz %d %q, want 200 %q", code, body, want)
	}

	l.append(entry{"post/1", 1}, entry{"post/1", 2}, entry{"user/1", 1})
	waitUntil(t, "the rows are applied", func() bool { _, n := leader.Applied(); return n == 3 }, leader)
	_, metrics := get(t, leader, "/metrics")
	for _, line := range []string{
		"edgecache_invalidator_leader 1",
		"edgecache_invalidator_rows_applied_total 3",
		"edgecache_invalidator_groups_moved_total 2",
		"edgecache_invalidator_apply_delay_seconds_count 3",
		`edgecache_invalidator_leadership_changes_total{change="gained"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(metrics, "\n"+line) {
			t.Errorf("leader metrics lack %q", line)
		}
	}
	if _, metrics := get(t, standby, "/metrics"); !strings.Contains(metrics, "\nedgecache_invalidator_leader 0\n") {
		t.Error("standby metrics do not say it is not the leader")
	}
	if code, _ := get(t, leader, "/debug/pprof/"); code != http.StatusOK {
		t.Errorf("pprof index %d", code)
	}
}
