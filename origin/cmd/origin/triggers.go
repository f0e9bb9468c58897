package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/origin"
)

const triggersUsage = `usage: origin triggers -table TABLE -groups 'NAME=VERSION,...' [-apply]

Prints (or, with -apply, creates in ORIGIN_MYSQL_DSN's database) the
triggers that make every committed change to TABLE append the row-groups
it changed to invalidation_log, for the durable invalidator
(origin/GUIDE.md). NAME is a group name with {column} placeholders filled
from the changed row; VERSION is where its version lives: a column of the
row, moved by every UPDATE, or table.column, a counter in the row of that
table whose id is the name's one placeholder. For example:

  origin triggers -table comments \
    -groups 'comment/{id}=version,post/{post_id}/comments=posts.comments_version'

`

// runTriggers is `origin triggers`; its result is the exit status.
func runTriggers(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("origin triggers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, triggersUsage)
		fs.PrintDefaults()
	}
	table := fs.String("table", "", "the table whose changes are logged")
	spec := fs.String("groups", "", "comma-separated NAME=VERSION groups each change logs")
	apply := fs.Bool("apply", false, "create the triggers in ORIGIN_MYSQL_DSN's database instead of printing them")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *table == "" || *spec == "" {
		fs.Usage()
		return 2
	}
	groups, err := origin.ParseTriggerGroups(*spec)
	if err != nil {
		fmt.Fprintln(stderr, "origin triggers:", err)
		return 2
	}
	script, err := origin.Triggers(*table, groups)
	if err != nil {
		fmt.Fprintln(stderr, "origin triggers:", err)
		return 2
	}
	if !*apply {
		fmt.Fprint(stdout, script)
		return 0
	}
	cfg, err := envconfig.Load[origin.Config]()
	if err != nil {
		fmt.Fprintf(stderr, "origin triggers: bad configuration (origin -h lists every variable):\n%v\n", err)
		return 2
	}
	db, err := sql.Open("mysql", cfg.MySQLDSN)
	if err != nil {
		fmt.Fprintln(stderr, "origin triggers:", err)
		return 1
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := origin.ApplyTriggers(ctx, db, *table, groups)
	if err != nil {
		fmt.Fprintln(stderr, "origin triggers:", err)
		return 1
	}
	fmt.Fprintf(stdout, "created on %s: %s\n", *table, strings.Join(names, ", "))
	return 0
}
