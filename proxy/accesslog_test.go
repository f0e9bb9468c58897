package proxy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"edgecache/proxy/store/memstore"
)

// Every request gets one access log line with what it was and how it
// went, flushed by Shutdown.
func TestAccessLogLinePerRequest(t *testing.T) {
	var v atomic.Int64
	v.Store(1)
	o := newScripted(t)
	o.handle("/a/item", versionedItem("item", &v, "post/1"))
	cfg := memConfig(o.url())
	cfg.AccessLog = filepath.Join(t.TempDir(), "access.log")
	p := startProxyOver(t, cfg, memstore.New(1))
	get(t, p, "/a/item")
	get(t, p, "/a/item?x=\"y\"")
	get(t, p, "/a/item")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg.AccessLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []struct{ uri, outcome string }{{"/a/item", "miss"}, {`/a/item?x="y"`, "miss"}, {"/a/item", "hit"}}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b)
	}
	for i, l := range lines {
		var got struct {
			Level, Logger, Msg, Method, URI, Outcome, Client, Ts string
			Status, Bytes                                        int
			Duration                                             float64
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, l)
		}
		if got.Level != "info" || got.Logger != "access" || got.Msg != "request" || got.Method != "GET" ||
			got.URI != want[i].uri || got.Outcome != want[i].outcome || got.Status != 200 ||
			got.Bytes != len("item v1") || got.Client != "127.0.0.1" || got.Duration <= 0 || got.Duration > 10 {
			t.Errorf("line %d: %+v, want GET %s %s", i, got, want[i].uri, want[i].outcome)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z0700", got.Ts); err != nil {
			t.Errorf("line %d: ts: %v", i, err)
		}
	}
}
