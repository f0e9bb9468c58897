package accesslog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDestinations(t *testing.T) {
	dir := t.TempDir()
	for dest, ok := range map[string]bool{
		"stdout": true, "stderr": true, "off": true,
		dir + "/access.log": true, "./access.log": true,
		"syslog": false, "stdot": false, "": false,
		dir + "/missing/access.log": false,
	} {
		if err := CheckDestination(dest); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", dest, err, ok)
		}
	}
	// A file gets JSON lines with ISO 8601 times, appended.
	path := filepath.Join(dir, "access.log")
	for range 2 {
		w, stop, err := OpenWriter(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := New(w).WriteOrigin(&OriginRequest{Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got:\n%s", b)
	}
	year := time.Now().UTC().Format("2006-")
	for _, l := range lines {
		if !strings.Contains(l, `"ts":"`+year) || !strings.Contains(l, `"logger":"access"`) || !strings.Contains(l, `"msg":"request"`) {
			t.Errorf("not a JSON line with an ISO 8601 ts: %s", l)
		}
	}
}
