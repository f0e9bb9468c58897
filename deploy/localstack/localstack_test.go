package localstack

import (
	"context"
	"database/sql"
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
