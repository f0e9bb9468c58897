package envconfig

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeService records when it was drained and shut down.
type fakeService struct {
	drained, shutdown time.Time
	deadline          time.Time
	block             chan struct{} // Shutdown waits for it, or ctx
}

func (f *fakeService) Drain() { f.drained = time.Now() }

func (f *fakeService) Shutdown(ctx context.Context) error {
	f.shutdown = time.Now()
	f.deadline, _ = ctx.Deadline()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// A signal drains, waits the drain delay, then shuts down with the
// shutdown timeout counted from then.
func TestStopOnSignalDrainsThenShutsDown(t *testing.T) {
	sig := make(chan os.Signal, 2)
	svc := &fakeService{}
	sig <- syscall.SIGTERM
	began := time.Now()
	err := stopOnSignal(zap.NewNop(), sig, svc, 100*time.Millisecond, time.Minute, func() { t.Error("exited") })
	if err != nil {
		t.Fatal(err)
	}
	if svc.drained.IsZero() || svc.drained.Sub(began) > 50*time.Millisecond {
		t.Errorf("drained at +%s, want at once", svc.drained.Sub(began))
	}
	if d := svc.shutdown.Sub(svc.drained); d < 100*time.Millisecond {
		t.Errorf("shut down %s after draining, want the 100ms drain delay", d)
	}
	if d := svc.deadline.Sub(svc.shutdown); d < 59*time.Second || d > time.Minute {
		t.Errorf("shutdown deadline %s after its start, want the 1m timeout counted after the drain delay", d)
	}
}

// A second signal exits at once; a shutdown that overruns its timeout
// is an error.
func TestSecondSignalExits(t *testing.T) {
	sig := make(chan os.Signal, 2)
	exited := make(chan struct{})
	svc := &fakeService{block: make(chan struct{})}
	sig <- syscall.SIGTERM
	done := make(chan error)
	go func() {
		done <- stopOnSignal(zap.NewNop(), sig, svc, 0, 300*time.Millisecond, func() { close(exited) })
	}()
	time.Sleep(50 * time.Millisecond)
	sig <- syscall.SIGINT
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not exit")
	}
	if err := <-done; err == nil {
		t.Error("a shutdown past its timeout returned no error")
	}
}
