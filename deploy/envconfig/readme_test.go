package envconfig_test

import (
	"flag"
	"os"
	"regexp"
	"testing"

	"edgecache/deploy/envconfig"
)

var update = flag.Bool("update", false, "rewrite the README's settings tables from the struct tags")

// settingsBlock is a README table between its markers:
//
//	<!-- settings: NAME (generated from the struct tags: go test ./deploy/envconfig -update) -->
//	| name | default | meaning |
//	...
//	<!-- end settings -->
var settingsBlock = regexp.MustCompile(`(?s)(<!-- settings: (\w+) [^\n]*-->\n)(.*?)(<!-- end settings -->)`)

// The README's settings tables are the struct tags, as `-h` prints them:
// this test fails when they differ, and with -update rewrites them.
func TestREADMETablesMatchTheTags(t *testing.T) {
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	out := settingsBlock.ReplaceAllFunc(readme, func(block []byte) []byte {
		m := settingsBlock.FindSubmatch(block)
		name := string(m[2])
		for _, c := range configs {
			if c.name == name {
				found[name] = true
				want := envconfig.MarkdownTable(c.cfg)
				if string(m[3]) != want && !*update {
					t.Errorf("README.md's %s table differs from the struct tags; run go test ./deploy/envconfig -run README -update", name)
				}
				return append(append(append([]byte{}, m[1]...), want...), m[4]...)
			}
		}
		t.Errorf("README.md has a settings table for unknown %q", name)
		return block
	})
	for _, c := range configs {
		if !found[c.name] {
			t.Errorf("README.md has no settings table for %s (<!-- settings: %s … --> … <!-- end settings -->)", c.name, c.name)
		}
	}
	if *update && string(out) != string(readme) {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
