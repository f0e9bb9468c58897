package envconfig

import (
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Setting is one variable as the struct tags declare it.
type Setting struct {
	Var     string
	Default string // "" when there is none
	Help    string
	Field   string // the Go field, for error messages about the tags
}

// Settings lists the variables of cfg (a struct or a pointer to one), in
// field order.
func Settings(cfg any) []Setting {
	t := reflect.TypeOf(cfg)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Setting
	for i := range t.NumField() {
		f := t.Field(i)
		v, ok := f.Tag.Lookup("env")
		if !ok {
			continue
		}
		out = append(out, Setting{Var: v, Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help"), Field: f.Name})
	}
	return out
}

// Usage writes the environment part of `-h`: every variable of cfg with
// its meaning and default.
func Usage(w io.Writer, cfg any) {
	fmt.Fprintln(w, "Environment variables:")
	for _, s := range Settings(cfg) {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(w, "  %s\n      %s\n      default: %s\n", s.Var, s.Help, def)
	}
}

// MarkdownTable is the README's table of cfg's variables: name, default,
// meaning.
func MarkdownTable(cfg any) string {
	var b strings.Builder
	b.WriteString("| name | default | meaning |\n|---|---|---|\n")
	for _, s := range Settings(cfg) {
		def := "(empty)"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Var, def, strings.ReplaceAll(s.Help, "|", `\|`))
	}
	return b.String()
}

// CommandUsage is a binary's whole `-h`: usage line, summary, then the
// variables of cfg.
func CommandUsage(w io.Writer, name, summary string, cfg any) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n\n", name, strings.TrimSpace(summary))
	Usage(w, cfg)
	fmt.Fprintln(w, "\nDurations use Go syntax (250ms, 3m); lists are comma-separated; a variable set to \"\" takes its default.")
}
