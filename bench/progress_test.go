package bench

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the progress goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Progress written to a file or pipe is plain lines: no carriage return,
// no terminal escape, a line per tenth of the seed at most.
func TestProgressWithoutTerminalIsPlainLines(t *testing.T) {
	var out syncBuffer
	bar := newProgressBar(&out, "seeding", 1000)
	for range 10 {
		bar.add(100)
		time.Sleep(30 * time.Millisecond)
	}
	bar.finish()
	text := out.String()
	if strings.ContainsAny(text, "\r\x1b") {
		t.Fatalf("carriage return or escape in non-terminal output: %q", text)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) < 2 || len(lines) > 11 || !strings.HasPrefix(lines[len(lines)-1], "seeding: 1000/1000 (100%)") {
		t.Fatalf("want up to one line per tenth ending at 100%%, got:\n%s", text)
	}

	var live syncBuffer
	tl := newTimeline(time.Now())
	stop := startProgressLine(&live, tl, RunConfig{Name: "proxy"})
	time.Sleep(5200 * time.Millisecond)
	stop()
	if text := live.String(); strings.ContainsAny(text, "\r\x1b") || !strings.Contains(text, "last 1s: ") || !strings.Contains(text, "so far: ") {
		t.Fatalf("live line: want labelled plain lines, got %q", text)
	}
}
