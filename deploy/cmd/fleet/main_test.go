package main

import (
	"context"
	"strings"
	"testing"
)

// Malformed memcached commands are refused with the usage before anything
// is asked of the fleet (nil here: a call would panic).
func TestMemcachedCommandUsage(t *testing.T) {
	for _, line := range []string{"", "add", "add a:1 b:2", "remove", "replace a:1", "status now", "spare 2", "flush"} {
		_, err := memcachedCommand(context.Background(), nil, strings.Fields(line))
		if err == nil || !strings.Contains(err.Error(), "want memcached spare | add ADDR") {
			t.Errorf("memcached %s: error %v, want the usage", line, err)
		}
	}
}
