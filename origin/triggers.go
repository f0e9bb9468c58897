package origin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// TriggerGroup is one row-group a table's triggers log to invalidation_log
// (origin/GUIDE.md): a name template whose {column} placeholders are
// filled from the changed row, and where the group's version lives.
type TriggerGroup struct {
	Name string // post/{id}, user/{user_id}/posts

	// Version is a column of the row itself ("version"), moved by every
	// UPDATE, or a counter "table.column" in another table's row whose id
	// is the name's one placeholder ("users.posts_version"), moved by
	// every change to a row of this table that names it.
	Version string
}

var (
	identifier  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	placeholder = regexp.MustCompile(`\{([^{}]*)\}`)
)

// maxTriggerName is MySQL's limit on a trigger's name.
const maxTriggerName = 64

// ParseTriggerGroups reads "post/{id}=version,user/{user_id}/posts=users.posts_version".
func ParseTriggerGroups(spec string) ([]TriggerGroup, error) {
	var out []TriggerGroup
	for item := range strings.SplitSeq(spec, ",") {
		name, version, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || version == "" {
			return nil, fmt.Errorf("group %q: want NAME=VERSION, the version a column (version) or another table's counter (users.posts_version)", item)
		}
		g := TriggerGroup{Name: name, Version: version}
		if err := g.check(); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// placeholders are the columns the name is made of, in order.
func (g TriggerGroup) placeholders() []string {
	var cols []string
	for _, m := range placeholder.FindAllStringSubmatch(g.Name, -1) {
		cols = append(cols, m[1])
	}
	return cols
}

// counter splits a "table.column" version; ok is false for a column of
// the row itself.
func (g TriggerGroup) counter() (table, column string, ok bool) {
	return strings.Cut(g.Version, ".")
}

func (g TriggerGroup) check() error {
	cols := g.placeholders()
	if len(cols) == 0 {
		return fmt.Errorf("group %q: no {column} placeholder: every row would share one group", g.Name)
	}
	for _, c := range cols {
		if !identifier.MatchString(c) {
			return fmt.Errorf("group %q: placeholder {%s} is not a column name", g.Name, c)
		}
	}
	// The text between placeholders goes into SQL string literals and
	// Edgecache-Groups names (proxy/README.md "Internal headers").
	for _, part := range placeholder.Split(g.Name, -1) {
		for _, r := range part {
			if r <= ' ' || r > '~' || strings.ContainsRune(`"',;=\{}`, r) {
				return fmt.Errorf("group %q: %q cannot be part of a group name", g.Name, r)
			}
		}
	}
	table, column, isCounter := g.counter()
	switch {
	case !isCounter && !identifier.MatchString(g.Version):
		return fmt.Errorf("group %q: version %q is not a column name", g.Name, g.Version)
	case isCounter && (!identifier.MatchString(table) || !identifier.MatchString(column)):
		return fmt.Errorf("group %q: version %q is not table.column", g.Name, g.Version)
	case isCounter && len(cols) != 1:
		return fmt.Errorf("group %q: a counter in %s needs exactly one placeholder, the id of its row", g.Name, table)
	}
	return nil
}

// ownVersions are the version columns of the row itself that groups name,
// each once.
func ownVersions(groups []TriggerGroup) []string {
	var own []string
	for _, g := range groups {
		if _, _, isCounter := g.counter(); !isCounter && !slices.Contains(own, g.Version) {
			own = append(own, g.Version)
		}
	}
	return own
}

// triggerNames are the triggers Triggers creates on table, in the
// migrations' naming: the version trigger (when a group's version is a
// column of the row), then one per statement kind.
func triggerNames(table string, groups []TriggerGroup) []string {
	names := []string{table + "_log_insert", table + "_log_update", table + "_log_delete"}
	if len(ownVersions(groups)) > 0 {
		names = append([]string{table + "_version"}, names...)
	}
	return names
}

// Triggers is the script (mysql client syntax, the migrations' DELIMITER
// form) of the triggers that make every committed change to table append
// the groups it changed to invalidation_log, as the hand-written ones of
// migrations/0002 do for posts and users:
//
//   - a row's own version column moves on every UPDATE (GREATEST, so that
//     a statement's own "version = version + 1" stays +1);
//   - INSERT logs each group at the new row's version; DELETE at the old
//     row's version + 1; UPDATE at the new row's, and, when a placeholder
//     column changed, the old name too, as DELETE would;
//   - a counter in another table's row moves with every change that names
//     the row, and is logged at its new value (0, unknown, if the row is
//     missing: the group is still invalidated).
func Triggers(table string, groups []TriggerGroup) (string, error) {
	if !identifier.MatchString(table) {
		return "", fmt.Errorf("table %q is not a table name", table)
	}
	if len(table)+len("_log_insert") > maxTriggerName {
		return "", fmt.Errorf("table %q: trigger names would be longer than %d characters", table, maxTriggerName)
	}
	if len(groups) == 0 {
		return "", errors.New("no group to log")
	}
	for _, g := range groups {
		if err := g.check(); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	b.WriteString("DELIMITER //\n")
	if own := ownVersions(groups); len(own) > 0 {
		fmt.Fprintf(&b, "\nCREATE TRIGGER IF NOT EXISTS %s_version BEFORE UPDATE ON `%s` FOR EACH ROW\nBEGIN\n", table, table)
		for _, c := range own {
			fmt.Fprintf(&b, "  SET NEW.`%s` = GREATEST(NEW.`%s`, OLD.`%s` + 1);\n", c, c, c)
		}
		b.WriteString("END//\n")
	}
	for _, kind := range []string{"INSERT", "UPDATE", "DELETE"} {
		fmt.Fprintf(&b, "\nCREATE TRIGGER IF NOT EXISTS %s_log_%s AFTER %s ON `%s` FOR EACH ROW\nBEGIN\n",
			table, strings.ToLower(kind), kind, table)
		for _, g := range groups {
			switch kind {
			case "INSERT":
				logGroup(&b, "  ", g, "NEW")
			case "DELETE":
				logGroup(&b, "  ", g, "OLD")
			case "UPDATE":
				var same []string
				for _, c := range g.placeholders() {
					same = append(same, fmt.Sprintf("NEW.`%s` <=> OLD.`%s`", c, c))
				}
				fmt.Fprintf(&b, "  IF NOT (%s) THEN\n", strings.Join(same, " AND "))
				logGroup(&b, "    ", g, "OLD")
				b.WriteString("  END IF;\n")
				logGroup(&b, "  ", g, "NEW")
			}
		}
		b.WriteString("END//\n")
	}
	b.WriteString("\nDELIMITER ;\n")
	return b.String(), nil
}

// logGroup writes the statements that log g for the row as it is after
// the change (row NEW) or as it was before it went (row OLD).
func logGroup(b *strings.Builder, indent string, g TriggerGroup, row string) {
	var parts []string
	for i, part := range placeholder.Split(g.Name, -1) {
		if part != "" {
			parts = append(parts, "'"+part+"'")
		}
		if cols := g.placeholders(); i < len(cols) {
			parts = append(parts, fmt.Sprintf("%s.`%s`", row, cols[i]))
		}
	}
	name := "CONCAT(" + strings.Join(parts, ", ") + ")"
	table, column, isCounter := g.counter()
	var version string
	switch {
	case isCounter:
		key := fmt.Sprintf("%s.`%s`", row, g.placeholders()[0])
		fmt.Fprintf(b, "%sUPDATE `%s` SET `%s` = `%s` + 1 WHERE id = %s;\n", indent, table, column, column, key)
		version = fmt.Sprintf("COALESCE((SELECT `%s` FROM `%s` WHERE id = %s), 0)", column, table, key)
	case row == "NEW":
		version = fmt.Sprintf("NEW.`%s`", g.Version)
	default: // the row is gone, or its old name is: one past its last version
		version = fmt.Sprintf("OLD.`%s` + 1", g.Version)
	}
	fmt.Fprintf(b, "%sINSERT INTO invalidation_log (grp, version) VALUES (%s, %s);\n", indent, name, version)
}

// ApplyTriggers creates table's triggers (Triggers) in db's schema and
// returns their names. It
// first checks what the triggers will use, so that a typo fails here
// rather than every later write to the table: invalidation_log, the table
// and every column named exist, placeholder columns are NOT NULL (a NULL name would fail
// the write), and none of the triggers exists yet (to change one, drop it
// first: CREATE TRIGGER IF NOT EXISTS would keep the old one silently).
func ApplyTriggers(ctx context.Context, db *sql.DB, table string, groups []TriggerGroup) ([]string, error) {
	script, err := Triggers(table, groups)
	if err != nil {
		return nil, err
	}
	if err := checkColumn(ctx, db, "invalidation_log", "grp", false); err != nil {
		return nil, fmt.Errorf("%w: the origin's migrations create it", err)
	}
	for _, g := range groups {
		for _, c := range g.placeholders() {
			if err := checkColumn(ctx, db, table, c, true); err != nil {
				return nil, fmt.Errorf("group %q: %w", g.Name, err)
			}
		}
		other, column, isCounter := g.counter()
		if !isCounter {
			other, column = table, g.Version
		} else if err := checkColumn(ctx, db, other, "id", false); err != nil {
			return nil, fmt.Errorf("group %q: %w", g.Name, err)
		}
		if err := checkColumn(ctx, db, other, column, false); err != nil {
			return nil, fmt.Errorf("group %q: %w", g.Name, err)
		}
	}
	names := triggerNames(table, groups)
	for _, name := range names {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TRIGGERS
			WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = ?`, name).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, fmt.Errorf("trigger %s exists already: DROP TRIGGER %s first", name, name)
		}
	}
	stmts, err := splitStatements(script)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// As in Migrate: CREATE TRIGGER waits for a metadata lock behind every
	// open transaction on the table, and every later query of the table
	// waits behind it. Fail after a second rather than stall the API.
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 1"); err != nil {
		return nil, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION lock_wait_timeout = DEFAULT")
	for _, stmt := range stmts {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, stmt)
		}
	}
	return names, nil
}

// checkColumn fails unless table has column (NOT NULL if notNull).
func checkColumn(ctx context.Context, db *sql.DB, table, column string, notNull bool) error {
	var nullable string
	err := db.QueryRowContext(ctx, `SELECT IS_NULLABLE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?`, table, column).Scan(&nullable)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s has no column %s", table, column)
	case err != nil:
		return err
	case notNull && nullable == "YES":
		return fmt.Errorf("%s.%s may be NULL: a group name made of it would fail the write", table, column)
	}
	return nil
}
