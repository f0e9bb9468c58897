package accesslog

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many writers, small buffers: every line arrives once, whole, and each
// writer's lines in the order written. The writer ticks all the time, so
// its tick meets Writes that wait for a buffer while holding the lock (it
// deadlocked when the tick took the lock instead of trying it).
func TestLineWriterKeepsEveryLineInOrder(t *testing.T) {
	var out bytes.Buffer                              // written by the writer's goroutine only, read after stop
	w := newLineWriter(&out, 64, 2, time.Microsecond) // ticks all the time, racing the Writes
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(w, "%d %d\n", g, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(l, "%d %d", &g, &i); err != nil || g >= writers || i != next[g] {
			t.Fatalf("line %q: want writer %d's line %d", l, g, next[min(g, writers-1)])
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines, want %d", g, n, lines)
		}
	}
}

// gate is a destination that holds every write until the test opens it.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	opened  atomic.Bool
	out     bytes.Buffer
}

func (g *gate) Write(b []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.open
	return g.out.Write(b)
}

// A destination that cannot keep up makes Write wait once every buffer is
// queued, and loses nothing.
func TestLineWriterWaitsForASlowDestination(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 1), open: make(chan struct{})}
	w := newLineWriter(g, 8, 2, time.Millisecond)
	wrote := make(chan bool)
	go func() {
		for _, l := range []string{"line 1\n", "line 2\n", "line 3\n"} {
			w.Write([]byte(l))
		}
		wrote <- g.opened.Load()
	}()
	<-g.entered // line 1's buffer is being written, line 2's fills the other
	g.opened.Store(true)
	close(g.open)
	select {
	case opened := <-wrote:
		if !opened {
			t.Fatal("line 3 was taken before any buffer came back: dropped or unbounded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write never returned after the destination took its buffers")
	}
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	if got := g.out.String(); got != "line 1\nline 2\nline 3\n" {
		t.Fatalf("destination got %q", got)
	}
}

// announcing is a destination that says when it got something.
type announcing struct {
	got chan string
}

func (s announcing) Write(b []byte) (int, error) { s.got <- string(b); return len(b), nil }

// A line reaches the destination within an interval, without stop and
// without a full buffer.
func TestLineWriterWritesEveryInterval(t *testing.T) {
	s := announcing{got: make(chan string, 10)}
	w := newLineWriter(s, 1<<20, 2, 10*time.Millisecond)
	defer w.stop()
	w.Write([]byte("one line\n"))
	select {
	case got := <-s.got:
		if got != "one line\n" {
			t.Fatalf("destination got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a line waited for a full buffer or for stop")
	}
}

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A failed destination write is reported once, by a later Write, and by
// stop; a Write after stop fails.
func TestLineWriterReportsDestinationErrors(t *testing.T) {
	w := newLineWriter(failing{}, 8, 2, time.Hour)
	w.Write([]byte("line 1\n"))
	w.Write([]byte("line 2\n")) // queues line 1's buffer: its write fails
	var reported int
	for range 1000 {
		if _, err := w.Write([]byte("line\n")); errors.Is(err, errDestination) {
			reported++
			break
		}
	}
	if reported != 1 {
		t.Fatal("no Write reported the failed destination write")
	}
	if err := w.stop(); !errors.Is(err, errDestination) {
		t.Fatalf("stop: %v, want the destination's failure", err)
	}
	if _, err := w.Write([]byte("late\n")); !errors.Is(err, errLogStopped) {
		t.Fatalf("Write after stop: %v", err)
	}
}
