package localstack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// terminalHelperEnv makes the test binary act as a server under make:
// TestTerminalHelper takes the terminal (or not), says "ready", and exits 0
// on SIGINT, as onebox does.
const terminalHelperEnv = "LOCALSTACK_TERMINAL_HELPER"

func TestTerminalHelper(t *testing.T) {
	mode := os.Getenv(terminalHelperEnv)
	if mode == "" {
		t.Skip("run by TestCtrlCUnderMakeExitsZero")
	}
	restore := func() {}
	if mode == "take" {
		restore = TakeTerminal()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	fmt.Println("ready")
	<-sig
	restore()
	os.Exit(0)
}

// Ctrl-C typed at a terminal running `make run` ends make with status 0 and
// no "make: *** … Error" once the server takes the terminal; without it,
// make kills itself with SIGINT (the reason TakeTerminal exists).
func TestCtrlCUnderMakeExitsZero(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	for _, tc := range []struct {
		mode     string
		wantZero bool
	}{{"take", true}, {"keep", false}} {
		t.Run(tc.mode, func(t *testing.T) {
			out, err := makeInTerminal(t, tc.mode)
			var exit *exec.ExitError
			switch {
			case tc.wantZero && err != nil:
				t.Fatalf("make ended with %v, want status 0; output:\n%s", err, out)
			case tc.wantZero && strings.Contains(out, "***"):
				t.Fatalf("make reported an error:\n%s", out)
			case !tc.wantZero && (!errors.As(err, &exit) || exit.ExitCode() == 0):
				t.Fatalf("without TakeTerminal make ended with %v; the test does not show what it claims", err)
			}
		})
	}
}

// makeInTerminal runs a one-rule Makefile whose recipe is the helper, on a
// new pseudo-terminal as its controlling terminal, types Ctrl-C once the
// helper is ready, and returns what the terminal showed and make's end.
func makeInTerminal(t *testing.T, mode string) (string, error) {
	master, slave, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mk := fmt.Sprintf("run:\n\t%s=%s %s -test.run '^TestTerminalHelper$$'\n", terminalHelperEnv, mode, self)
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-s", "-C", dir, "run")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		signalled := false
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			if !signalled && strings.Contains(screen.String(), "ready") {
				signalled = true
				close(ready)
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the helper never said ready:\n%s", screen.String())
	}
	time.Sleep(100 * time.Millisecond)
	master.Write([]byte{0x03}) // Ctrl-C: the line discipline sends SIGINT to the foreground group
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
		t.Errorf("make did not end after Ctrl-C")
	}
	mu.Lock()
	defer mu.Unlock()
	return screen.String(), err
}

// openPTY opens a new pseudo-terminal pair (posix_openpt, unlockpt,
// ptsname).
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		master.Close()
		return nil, nil, e
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		master.Close()
		return nil, nil, e
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}
