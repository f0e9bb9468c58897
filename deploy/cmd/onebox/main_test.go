package main

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"edgecache/deploy/envconfig"
)

// onebox reports the problems of all three services at once, each by its
// variable.
func TestLoadConfigsListsEveryService(t *testing.T) {
	t.Setenv("ORIGIN_QUERY_TIMEOUT", "1")
	t.Setenv("PROXY_MAX_CONNS", "many")
	t.Setenv("INVALIDATOR_BATCH", "0")
	_, err := loadConfigs()
	var ps envconfig.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v, want envconfig.Problems", err)
	}
	got := ps.Vars()
	slices.Sort(got)
	if want := []string{"INVALIDATOR_BATCH", "ORIGIN_QUERY_TIMEOUT", "PROXY_MAX_CONNS"}; !slices.Equal(got, want) {
		t.Fatalf("problems name %v, want %v", got, want)
	}
}

// The Makefile runs the binaries make build made (no go run, which builds
// again and exits 1 on Ctrl-C), and make bench keeps its data apart from
// make run's.
func TestMakefileRunsTheBinaries(t *testing.T) {
	b, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	for _, line := range strings.Split(mk, "\n") {
		if strings.HasPrefix(line, "\t") && (strings.Contains(line, "go run") || strings.Contains(line, "$(GO) run")) {
			t.Errorf("a recipe uses go run: %s", line)
		}
	}
	recipe := func(target string) string {
		m := regexp.MustCompile(`(?m)^` + target + `:[^\n]*\n((?:\t[^\n]*\n)+)`).FindStringSubmatch(mk)
		if m == nil {
			t.Fatalf("no %s target", target)
		}
		return m[1]
	}
	run, bench := recipe("run"), recipe("bench")
	if !strings.Contains(run, "bin/onebox -dir $(RUN_DIR) ") {
		t.Errorf("make run does not run bin/onebox in $(RUN_DIR):\n%s", run)
	}
	if !strings.Contains(bench, "bin/onebox -dir $(RUN_DIR)/bench ") {
		t.Errorf("make bench does not use a run folder (a database) of its own:\n%s", bench)
	}
	if !strings.Contains(recipe("build"), "$(CMDS)") || !strings.Contains(mk, "./deploy/cmd/onebox") {
		t.Error("make build does not build onebox")
	}
}
