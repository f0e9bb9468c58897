package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// The run folder holds everything a fleet writes: HAProxy's config, error
// files and log, and the data folders of MariaDB and memcached. Its child
// processes die with the fleet process even on SIGKILL (localstack.Process
// sets Pdeathsig); their folders are what a killed run leaves behind, and
// the next start in the same folder removes them (dataDirs). A run in a
// temporary folder also removes the temporary folders of killed runs
// (removeStaleRuns).
//
// lockName is the run folder's lock: held (flock) by the running fleet,
// released by the kernel when it dies however it dies, so that a folder
// whose lock can be taken belongs to no running fleet.
const lockName = "fleet.lock"

// tempPattern names temporary run folders.
const tempPattern = "edgecache-fleet-"

// dataDirs are the run folder's data folders, new at every start.
func dataDirs() []string {
	dirs := []string{"primary", "replica", sparesDir}
	for _, z := range Zones {
		dirs = append(dirs, "memcached-"+z)
	}
	return dirs
}

// lockRunDir takes dir's lock, or says which fleet holds it. The returned
// file holds the lock until closed (or the process ends).
func lockRunDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another fleet (pid %s) runs in %s", b[:n], dir)
		}
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// removeStaleRuns removes temporary run folders left by fleets that were
// killed: those whose lock file names a pid and is held by nobody. A folder
// without one (not a fleet's, or a fleet between creating its lock file
// and locking it) is left alone.
func removeStaleRuns() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPattern+"*"))
	for _, dir := range dirs {
		if pid, err := os.ReadFile(filepath.Join(dir, lockName)); err != nil || len(pid) == 0 {
			continue
		}
		lock, err := lockRunDir(dir)
		if err != nil {
			continue // running, or not ours to judge
		}
		os.RemoveAll(dir)
		lock.Close()
	}
}
