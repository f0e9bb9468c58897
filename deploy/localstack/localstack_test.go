package localstack

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMemcachedStartStop(t *testing.T) {
	m, err := StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("version\r\n"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:8]) != "VERSION " {
		t.Fatalf("version answer %q, %v", buf[:n], err)
	}
	c.Close()
	m.Stop()
	if _, err := net.DialTimeout("tcp", m.Addr, time.Second); err == nil {
		t.Fatal("memcached still answers after Stop")
	}
}

func TestMariaDBReplication(t *testing.T) {
	ctx := context.Background()
	primary, err := StartMariaDB(ctx, MariaDBOptions{ServerID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Stop()
	replica, err := StartMariaDB(ctx, MariaDBOptions{ServerID: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Stop()
	if err := replica.ReplicateFrom(ctx, primary); err != nil {
		t.Fatal(err)
	}
	if err := primary.Exec(ctx, "CREATE TABLE edgecache.t (v INT)", "INSERT INTO edgecache.t VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", replica.DSN("edgecache"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	for deadline := time.Now().Add(30 * time.Second); ; {
		err = db.QueryRow("SELECT v FROM t").Scan(&v)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || v != 7 {
		t.Fatalf("replica read %d, %v; want 7", v, err)
	}
	var trust int
	if err := db.QueryRow("SELECT @@log_bin_trust_function_creators").Scan(&trust); err != nil || trust != 1 {
		t.Fatalf("log_bin_trust_function_creators = %d, %v; want 1 with the binary log on", trust, err)
	}
}

// TestMariaDBPauseResume checks that a paused server leaves a query
// unanswered until its deadline, and answers again once resumed.
func TestMariaDBPauseResume(t *testing.T) {
	ctx := context.Background()
	m, err := StartMariaDB(ctx, MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	db, err := sql.Open("mysql", m.DSN("edgecache"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	paused, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = db.QueryRowContext(paused, "SELECT 1").Scan(new(int))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		m.Resume()
		t.Fatalf("query on a paused server: %v, want the context's deadline", err)
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after Resume: %d, %v", one, err)
	}
}

// StartMemcachedIn clears what a killed run left in its folder, and Stop
// removes the folder.
func TestMemcachedInAFolderClearsLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "memcached")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "ports")
	if err := os.WriteFile(leftover, []byte("TCP INET: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := StartMemcachedIn(context.Background(), dir, 16)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(m.Addr, ":1") {
		t.Fatalf("memcached at %s: the leftover port file was read", m.Addr)
	}
	m.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("folder after Stop: %v", err)
	}
}

// WaitReady returns once ready does, and otherwise says why it gave up: the
// process exited, ctx ended, or the time ran out with ready's last error.
func TestWaitReady(t *testing.T) {
	dir := t.TempDir()
	sleeper, err := StartProcess(filepath.Join(dir, "sleep.log"), nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	defer sleeper.Stop()
	ctx := context.Background()
	calls := 0
	if err := sleeper.WaitReady(ctx, 5*time.Second, time.Millisecond, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Errorf("ready on the third call: %v after %d calls", err, calls)
	}
	notYet := errors.New("not yet")
	if err := sleeper.WaitReady(ctx, 20*time.Millisecond, time.Millisecond, func() error { return notYet }); !errors.Is(err, notYet) ||
		!strings.Contains(err.Error(), "sleep not ready within 20ms") {
		t.Errorf("never ready: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := sleeper.WaitReady(cancelled, time.Minute, time.Millisecond, func() error { return notYet }); !errors.Is(err, context.Canceled) {
		t.Errorf("ctx ended: %v", err)
	}
	quitter, err := StartProcess(filepath.Join(dir, "true.log"), nil, "true")
	if err != nil {
		t.Fatal(err)
	}
	if err := quitter.WaitReady(ctx, time.Minute, time.Millisecond, func() error { return notYet }); err == nil ||
		!strings.Contains(err.Error(), "true exited during start-up") {
		t.Errorf("process exited: %v", err)
	}
}
