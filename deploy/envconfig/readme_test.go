package envconfig_test

import (
	"flag"
	"os"
	"regexp"
	"testing"

	"edgecache/deploy/envconfig"
)

var update = flag.Bool("update", false, "rewrite the READMEs' settings tables from the struct tags")

// settingsBlock is a README table between its markers:
//
//	<!-- settings: NAME (generated from the struct tags: go test ./deploy/envconfig -update) -->
//	| name | default | meaning |
//	...
//	<!-- end settings -->
var settingsBlock = regexp.MustCompile(`(?s)(<!-- settings: (\w+) [^\n]*-->\n)(.*?)(<!-- end settings -->)`)

// readmes hold the settings tables, each beside its code: the origin's in
// origin/README.md, the proxy's and the invalidator's in proxy/README.md.
// The top-level README is read too, so that a table left there is checked.
var readmes = []string{"../../README.md", "../../origin/README.md", "../../proxy/README.md"}

// The READMEs' settings tables are the struct tags, as `-h` prints them:
// this test fails when they differ or a binary has no table, and with
// -update rewrites them.
func TestREADMETablesMatchTheTags(t *testing.T) {
	found := map[string]int{}
	for _, path := range readmes {
		readme, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out := settingsBlock.ReplaceAllFunc(readme, func(block []byte) []byte {
			m := settingsBlock.FindSubmatch(block)
			name := string(m[2])
			for _, c := range configs {
				if c.name == name {
					found[name]++
					want := envconfig.MarkdownTable(c.cfg)
					if string(m[3]) != want && !*update {
						t.Errorf("%s's %s table differs from the struct tags; run go test ./deploy/envconfig -run README -update", path, name)
					}
					return append(append(append([]byte{}, m[1]...), want...), m[4]...)
				}
			}
			t.Errorf("%s has a settings table for unknown %q", path, name)
			return block
		})
		if *update && string(out) != string(readme) {
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range configs {
		switch found[c.name] {
		case 1:
		case 0:
			t.Errorf("no README has a settings table for %s (<!-- settings: %s … --> … <!-- end settings -->)", c.name, c.name)
		default:
			t.Errorf("%d READMEs have a settings table for %s: keep one", found[c.name], c.name)
		}
	}
}
