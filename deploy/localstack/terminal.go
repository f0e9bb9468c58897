package localstack

import (
	"os/signal"
	"syscall"
	"unsafe"
)

// TakeTerminal makes this process's own process group the terminal's
// foreground group, so that Ctrl-C signals this process (onebox, fleet) and
// the servers it starts, and not make. GNU make, on SIGINT, waits for its child, reports a failed one
// ("make: *** [Makefile:NN: run] Error 1") and then kills itself with
// SIGINT: under `make run` Ctrl-C could never end with status 0. Here make
// gets no signal, the process stops everything, exits 0, and make exits 0
// too.
//
// The returned function gives the terminal back to the group that had it.
// Without a terminal on stdin (CI, a pipe), or when the process already
// leads the foreground group (run from a shell, not make), it does nothing.
// Ctrl-Z is ignored once it holds the terminal: make, waiting in the
// background, could not resume a stopped process. Call it before starting
// servers, so that they join the group (and ignore Ctrl-Z too).
func TakeTerminal() (restore func()) {
	const tty = 0 // stdin
	before, err := foreground(tty)
	if err != nil {
		return func() {}
	}
	if before == syscall.Getpgrp() && syscall.Getpgrp() == syscall.Getpid() {
		return func() {}
	}
	// Setting the foreground group from a background group raises SIGTTOU.
	signal.Ignore(syscall.SIGTTOU, syscall.SIGTSTP)
	if syscall.Setpgid(0, 0) != nil {
		return func() {}
	}
	if setForeground(tty, syscall.Getpgrp()) != nil {
		syscall.Setpgid(0, before)
		return func() {}
	}
	return func() { setForeground(tty, before) }
}

func foreground(fd int) (int, error) {
	var pgid int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgid))); e != 0 {
		return 0, e
	}
	return int(pgid), nil
}

func setForeground(fd, pgid int) error {
	p := int32(pgid)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCSPGRP, uintptr(unsafe.Pointer(&p))); e != 0 {
		return e
	}
	return nil
}
