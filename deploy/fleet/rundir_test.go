package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A temporary run folder whose lock nobody holds (its fleet was killed: the
// kernel released the lock) is removed by the next start; one whose lock is
// held (a running fleet), or that has no lock file, is left alone.
func TestKilledRunsFolderIsRemovedAtTheNextStart(t *testing.T) {
	mk := func() string {
		dir, err := os.MkdirTemp("", tempPattern)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.MkdirAll(filepath.Join(dir, "primary", "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	running, killed, foreign := mk(), mk(), mk()
	lock, err := lockRunDir(running)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lockRunDir(running); err == nil || !strings.Contains(err.Error(), "another fleet") {
		t.Fatalf("second lock of a running fleet's folder: %v", err)
	}
	dead, err := lockRunDir(killed)
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // what the kernel does when the process dies

	removeStaleRuns()
	for dir, want := range map[string]bool{running: true, killed: false, foreign: true} {
		_, err := os.Stat(dir)
		if exists := err == nil; exists != want {
			t.Errorf("%s: exists %v, want %v", dir, exists, want)
		}
	}
}
