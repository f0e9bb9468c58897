// Package envconfig is the contract between edgecache's binaries (origin,
// proxy, invalidator) and the environment they are deployed with: settings
// come from environment variables declared by struct tags, every problem is
// reported at once under its variable's name, `-h` and the README's tables
// are generated from the same tags, logs go to stderr as JSON with ISO 8601
// times, and SIGTERM starts one drain → stop sequence.
//
// Only commands and deploy import it: the libraries (proxy, origin, ...)
// declare their Config and take it, and a logger, as values; they never
// read the environment. A deploy test checks that the imports run that way.
//
// A configuration is a flat struct whose fields carry three tags:
//
//	Listen string `env:"PROXY_LISTEN" envDefault:"127.0.0.1:8080" help:"client listener host:port"`
//
// caarlos0/env reads them; a variable set to the empty string falls back to
// its default (env's behaviour), so Validate, written beside each struct,
// checks what env cannot: zero timeouts, bad addresses, settings that only
// work together. It returns one "VARIABLE: problem" error per setting,
// joined (errors.Join), which Load turns into Problems.
package envconfig

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	env "github.com/caarlos0/env/v11"
)

// Problem is one setting that cannot work.
type Problem struct {
	Var string // the environment variable to fix
	Msg string
}

func (p Problem) Error() string { return p.Var + ": " + p.Msg }

// Problems is every setting that cannot work, in the order found. It is the
// error Load returns, and the one a Validate method should return.
type Problems []Problem

// Addf records a problem with variable v.
func (ps *Problems) Addf(v, format string, args ...any) {
	*ps = append(*ps, Problem{Var: v, Msg: fmt.Sprintf(format, args...)})
}

// Err is nil when there is no problem, else ps.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Error lists the problems, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Vars are the variables named, each once.
func (ps Problems) Vars() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		if !seen[p.Var] {
			seen[p.Var] = true
			out = append(out, p.Var)
		}
	}
	return out
}

// Validator is a configuration struct that checks itself.
type Validator interface {
	Validate() error
}

// Load reads T from the process's environment and validates it.
func Load[T Validator]() (T, error) { return LoadFrom[T](nil) }

// LoadFrom reads T from environ (nil: the process's environment) and
// validates it. The error, if any, is Problems: every variable that does not
// parse, then every problem Validate found in the others, each under its
// variable's name. A variable that does not parse is validated as if it
// were unset, so that its zero value does not cause a second, misleading
// complaint.
func LoadFrom[T Validator](environ map[string]string) (T, error) {
	if environ == nil {
		environ = environMap()
	}
	var zero T
	cfg, err := env.ParseAsWithOptions[T](env.Options{Environment: environ})
	if err == nil {
		return cfg, validate(cfg, nil)
	}
	var ps Problems
	bad := map[string]bool{}
	for _, e := range unwrap(err) {
		p := parseProblem(reflect.TypeFor[T](), e, environ)
		ps = append(ps, p)
		bad[p.Var] = true
	}
	// Validate the rest with the bad variables at their defaults.
	rest := make(map[string]string, len(environ))
	for k, v := range environ {
		if !bad[k] {
			rest[k] = v
		}
	}
	cfg, err = env.ParseAsWithOptions[T](env.Options{Environment: rest})
	if err != nil {
		// A default that does not parse: a bug in the struct tags.
		return zero, append(ps, Problem{Var: "(defaults)", Msg: err.Error()})
	}
	if err := validate(cfg, bad); err != nil {
		ps = append(ps, err.(Problems)...)
	}
	return zero, ps
}

// validate runs cfg.Validate and returns its problems as Problems, leaving
// out those of the variables in skip.
func validate(cfg Validator, skip map[string]bool) error {
	err := cfg.Validate()
	if err == nil {
		return nil
	}
	var ps Problems
	for _, e := range unwrap(err) {
		var p Problem
		var pp Problems
		switch {
		case errors.As(e, &pp):
			for _, p := range pp {
				if !skip[p.Var] {
					ps = append(ps, p)
				}
			}
			continue
		case errors.As(e, &p):
		default:
			// "VAR: message", as fmt.Errorf writes it.
			v, msg, _ := strings.Cut(e.Error(), ": ")
			p = Problem{Var: v, Msg: msg}
		}
		if !skip[p.Var] {
			ps = append(ps, p)
		}
	}
	return ps.Err()
}

// unwrap flattens joined errors (errors.Join, env.AggregateError).
func unwrap(err error) []error {
	var pp Problems
	if errors.As(err, &pp) {
		return []error{pp}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unwrap(e)...)
		}
		return out
	}
	return []error{err}
}

// parseProblem names the variable of one of env's errors and says what it
// wants, in the words of the setting rather than of Go's parsers.
func parseProblem(t reflect.Type, err error, environ map[string]string) Problem {
	var pe env.ParseError
	var notSet env.VarIsNotSetError
	var empty env.EmptyVarError
	switch {
	case errors.As(err, &pe):
		f, ok := t.FieldByName(pe.Name)
		if !ok {
			return Problem{Var: pe.Name, Msg: err.Error()}
		}
		v := f.Tag.Get("env")
		return Problem{Var: v, Msg: fmt.Sprintf("want %s, got %q", kindOf(pe.Type), environ[v])}
	case errors.As(err, &notSet):
		return Problem{Var: notSet.Key, Msg: "must be set"}
	case errors.As(err, &empty):
		return Problem{Var: empty.Key, Msg: "must not be empty"}
	}
	return Problem{Var: "(environment)", Msg: err.Error()}
}

// kindOf says in words what a value of type t looks like.
func kindOf(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration such as 250ms, 5s or 3m"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number ≥ 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a comma-separated list of " + strings.TrimPrefix(kindOf(t.Elem()), "a ")
	}
	return "a " + t.String()
}

func environMap() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
