package origin

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// migrationFiles are the schema's versioned migrations, NNNN_name.sql,
// applied in order of NNNN. Statements in a file end with ";" at the end of
// a line; lines starting with "--" are comments. MySQL commits DDL
// implicitly, so a file is not atomic: write each statement so that running
// it again is harmless (CREATE TABLE IF NOT EXISTS, ...).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the MySQL named lock that lets only one origin migrate at
// a time; the others wait and then find nothing left to do.
const migrationLock = "edgecache.schema_migrations"

type migration struct {
	version    int
	name       string
	statements []string
}

// loadMigrations reads and orders the embedded migrations.
func loadMigrations() ([]migration, error) {
	paths, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "migrations/"), ".sql")
		prefix, _, _ := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if err != nil || version < 1 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number", p)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, version)
		}
		seen[version] = name
		text, err := migrationFiles.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: name, statements: splitStatements(string(text))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// splitStatements cuts a migration file into statements at lines ending
// in ";", dropping comment lines.
func splitStatements(text string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		stmts = append(stmts, rest)
	}
	return stmts
}

// migrate applies the embedded migrations that db has not seen yet, in
// order, holding a named lock so that origins starting together do not race.
func migrate(ctx context.Context, db *sql.DB, log *zap.Logger) error {
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	// GET_LOCK belongs to a session: keep one connection for the whole run.
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got sql.NullInt64
	deadline, ok := ctx.Deadline()
	wait := 60
	if ok {
		wait = max(1, int(time.Until(deadline).Seconds()))
	}
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", migrationLock, wait).Scan(&got); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("take migration lock: not granted within %ds", wait)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", migrationLock)

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INT UNSIGNED NOT NULL PRIMARY KEY,
		name       VARCHAR(255) NOT NULL,
		applied_at DATETIME(6)  NOT NULL
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		for _, stmt := range m.statements {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %04d %s: %w", m.version, m.name, err)
			}
		}
		if _, err := conn.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(6))",
			m.version, m.name); err != nil {
			return fmt.Errorf("record migration %04d: %w", m.version, err)
		}
		log.Info("applied migration", zap.Int("version", m.version), zap.String("name", m.name))
	}
	return nil
}
