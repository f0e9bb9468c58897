package envconfig_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The libraries never import deploy: only commands (package main) and
// deploy read the environment, and the libraries take their Config as a
// value. A library that imported deploy would also pull deploy's own
// dependencies (Terraform's HCL, the fleet) into every binary.
func TestLibrariesDoNotImportDeploy(t *testing.T) {
	out, err := exec.Command("go", "list",
		"-f", `{{.ImportPath}} {{.Name}} {{join .Deps " "}}`,
		"edgecache/proxy/...", "edgecache/origin/...", "edgecache/cachepolicy/...", "edgecache/bench/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	libraries := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, name, deps := fields[0], fields[1], fields[2:]
		if name == "main" {
			continue // a command: it reads the environment
		}
		libraries++
		for _, d := range deps {
			if strings.HasPrefix(d, "edgecache/deploy/") {
				t.Errorf("%s imports %s (directly or not): libraries take their Config, the commands load it", pkg, d)
			}
		}
	}
	if libraries < 10 {
		t.Fatalf("go list found %d library packages: the patterns match nothing?\n%s", libraries, out)
	}
}
