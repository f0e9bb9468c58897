package main

import (
	"bytes"
	"strings"
	"testing"

	"edgecache/origin"
)

// `origin triggers` prints the generator's script, and refuses a bad
// specification with status 2 and what is wrong.
func TestTriggersCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runTriggers([]string{"-table", "comments", "-groups", "comment/{id}=version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("status %d: %s", code, stderr.String())
	}
	want, _ := origin.Triggers("comments", []origin.TriggerGroup{{Name: "comment/{id}", Version: "version"}})
	if stdout.String() != want {
		t.Fatalf("printed:\n%s\nwant:\n%s", stdout.String(), want)
	}
	for _, args := range [][]string{
		{"-table", "comments", "-groups", "comment/{id}"},
		{"-table", "comments"},
		{"-table", "comments", "-groups", "comment/{id}=version", "extra"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := runTriggers(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 || stdout.Len() != 0 {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want 2 and a message", args, code, stdout.String(), stderr.String())
		}
	}
	stderr.Reset()
	if code := runTriggers([]string{"-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "usage: origin triggers") {
		t.Errorf("-h: status %d, %q", code, stderr.String())
	}
}
