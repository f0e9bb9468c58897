package envconfig_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"edgecache/deploy/envconfig"
	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"
)

// configs are every binary's configuration, by name.
var configs = []struct {
	name string
	cfg  any
	load func(map[string]string) error
}{
	{"origin", origin.Config{}, func(e map[string]string) error { _, err := envconfig.LoadFrom[origin.Config](e); return err }},
	{"proxy", proxy.Config{}, func(e map[string]string) error { _, err := envconfig.LoadFrom[proxy.Config](e); return err }},
	{"invalidator", invalidator.Config{}, func(e map[string]string) error {
		_, err := envconfig.LoadFrom[invalidator.Config](e)
		return err
	}},
}

// A bad duration in one variable and a bad number in another are both
// reported, each by its variable's name (not the Go field's), with a
// problem Validate found in a third.
func TestLoadReportsEveryProblemByVariable(t *testing.T) {
	_, err := envconfig.LoadFrom[proxy.Config](map[string]string{
		"PROXY_MEMCACHED_TIMEOUT": "250",     // no unit
		"PROXY_MAX_CONNS":         "lots",    // not a number
		"PROXY_ACCESS_LOG":        "stdot",   // Validate's
		"PROXY_LISTEN":            "8080",    // Validate's
		"PROXY_TRUST_FORWARDED":   "perhaps", // not a boolean
	})
	var ps envconfig.Problems
	if !asProblems(err, &ps) {
		t.Fatalf("error %T %v, want envconfig.Problems", err, err)
	}
	got := ps.Vars()
	slices.Sort(got)
	want := []string{"PROXY_ACCESS_LOG", "PROXY_LISTEN", "PROXY_MAX_CONNS", "PROXY_MEMCACHED_TIMEOUT", "PROXY_TRUST_FORWARDED"}
	if !slices.Equal(got, want) {
		t.Fatalf("problems name %v, want %v:\n%v", got, want, err)
	}
	text := err.Error()
	for _, line := range []string{
		`PROXY_MEMCACHED_TIMEOUT: want a duration such as 250ms, 5s or 3m, got "250"`,
		`PROXY_MAX_CONNS: want a whole number, got "lots"`,
		`PROXY_TRUST_FORWARDED: want true or false, got "perhaps"`,
	} {
		if !strings.Contains(text, line) {
			t.Errorf("error lacks %q:\n%s", line, text)
		}
	}
	// The Go field names are nowhere.
	for _, field := range []string{"MemcachedTimeout", "MaxConns", "TrustXFF"} {
		if strings.Contains(text, field) {
			t.Errorf("error names the field %s:\n%s", field, text)
		}
	}
	// A variable that does not parse is not also reported by Validate
	// for the zero value it was left at ("must be > 0, got 0s").
	if n := strings.Count(text, "PROXY_MEMCACHED_TIMEOUT"); n != 1 {
		t.Errorf("PROXY_MEMCACHED_TIMEOUT reported %d times:\n%s", n, text)
	}
}

// Every variable of every binary that can fail to parse is named when it
// does, and all of them are reported together.
func TestEveryVariableIsNamed(t *testing.T) {
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			all := map[string]string{}
			typ := reflect.TypeOf(c.cfg)
			for i := range typ.NumField() {
				f := typ.Field(i)
				v := f.Tag.Get("env")
				if f.Type.Kind() == reflect.String || f.Type.Kind() == reflect.Slice {
					continue // any text parses
				}
				all[v] = "not-a-value"
				err := c.load(map[string]string{v: "not-a-value"})
				var ps envconfig.Problems
				if !asProblems(err, &ps) || !slices.Equal(ps.Vars(), []string{v}) {
					t.Errorf("%s=not-a-value: got %v, want one problem naming %s", v, err, v)
				}
			}
			err := c.load(all)
			var ps envconfig.Problems
			if !asProblems(err, &ps) || len(ps.Vars()) != len(all) {
				t.Errorf("every typed variable bad at once: %d problems reported, want %d:\n%v", len(ps.Vars()), len(all), err)
			}
		})
	}
}

func TestDefaultsAreValid(t *testing.T) {
	for _, c := range configs {
		if err := c.load(map[string]string{}); err != nil {
			t.Errorf("%s: the defaults do not validate: %v", c.name, err)
		}
	}
}

// Every field is a documented variable with a default (or a deliberate
// empty one), and -h shows each with its meaning and default.
func TestUsageListsEveryVariable(t *testing.T) {
	for _, c := range configs {
		var b strings.Builder
		envconfig.Usage(&b, c.cfg)
		typ := reflect.TypeOf(c.cfg)
		for i := range typ.NumField() {
			f := typ.Field(i)
			v, help := f.Tag.Get("env"), f.Tag.Get("help")
			if v == "" || help == "" {
				t.Errorf("%s.%s lacks an env or help tag", c.name, f.Name)
				continue
			}
			if !strings.HasPrefix(v, strings.ToUpper(c.name)+"_") {
				t.Errorf("%s: %s does not start with %s_", c.name, v, strings.ToUpper(c.name))
			}
			def := f.Tag.Get("envDefault")
			if def == "" {
				def = "(empty)"
			}
			if !strings.Contains(b.String(), "  "+v+"\n      "+help+"\n      default: "+def+"\n") {
				t.Errorf("%s -h lacks %s with its meaning and default", c.name, v)
			}
		}
	}
}

// The same meaning has the same name in every binary.
func TestSharedSettingsShareNames(t *testing.T) {
	for _, c := range configs {
		typ := reflect.TypeOf(c.cfg)
		for _, suffix := range []string{"_SHUTDOWN_TIMEOUT", "_LOG_LEVEL"} {
			f, ok := fieldBySuffix(typ, suffix)
			if !ok {
				t.Errorf("%s has no *%s", c.name, suffix)
				continue
			}
			want := map[string]string{"_SHUTDOWN_TIMEOUT": "ShutdownTimeout", "_LOG_LEVEL": "LogLevel"}[suffix]
			if f.Name != want {
				t.Errorf("%s: %s is field %s, want %s as in the other binaries", c.name, f.Tag.Get("env"), f.Name, want)
			}
		}
	}
}

func fieldBySuffix(t reflect.Type, suffix string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if strings.HasSuffix(t.Field(i).Tag.Get("env"), suffix) {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func asProblems(err error, ps *envconfig.Problems) bool {
	p, ok := err.(envconfig.Problems)
	*ps = p
	return ok
}
