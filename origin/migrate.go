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

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
)

// migrationFiles are the schema's versioned migrations, NNNN_name.sql,
// applied in order of NNNN. Statements in a file end with ";" at the end of
// a line; lines starting with "--" are comments. As in the mysql client, a
// line "DELIMITER //" makes statements end with "//" instead, until
// "DELIMITER ;": a trigger's BEGIN ... END body holds ";" of its own.
// MySQL commits DDL implicitly, so a file is not atomic: write each
// statement so that running it again is harmless (CREATE TABLE IF NOT
// EXISTS, CREATE TRIGGER IF NOT EXISTS, ...).
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
		statements, err := splitStatements(string(text))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", p, err)
		}
		out = append(out, migration{version: version, name: name, statements: statements})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// splitStatements cuts a migration file into statements at lines ending
// in the delimiter, dropping comment lines. The delimiter is ";" until a
// line "DELIMITER xx" (any case) sets another, as in the mysql client.
func splitStatements(text string) ([]string, error) {
	delimiter := ";"
	var stmts []string
	var cur strings.Builder
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		if keyword, rest, _ := strings.Cut(trimmed, " "); strings.EqualFold(keyword, "DELIMITER") {
			if delimiter = strings.TrimSpace(rest); delimiter == "" || strings.ContainsAny(delimiter, " \t") {
				return nil, fmt.Errorf("%q: DELIMITER needs one word", trimmed)
			}
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, delimiter) {
			stmts = append(stmts, strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cur.String()), delimiter)))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		stmts = append(stmts, rest)
	}
	return stmts, nil
}

// migrationDSN is dsn without its readTimeout. A migration waits for
// another origin's migration (GET_LOCK) and runs DDL, either of which may
// take far longer than the short readTimeout meant for queries; the
// context (migrateTimeout) bounds it instead.
func migrationDSN(dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	cfg.ReadTimeout = 0
	return cfg.FormatDSN(), nil
}

// Migrate applies the embedded migrations that db has not seen yet, in
// order, holding a named lock so that origins starting together do not race.
// The origin runs it at start-up; it is exported so that tests of other
// packages (the invalidator's) can create the schema in a database of their
// own.
func Migrate(ctx context.Context, db *sql.DB, log *zap.Logger) error {
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
	// DDL (CREATE TRIGGER too) waits for a metadata lock on its table behind
	// every open transaction that used the table, and every later query of
	// the table queues behind the DDL: on a busy primary, an outage for as
	// long as it waits. Waiting at most a second fails the migration, and
	// this start-up, instead.
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 1"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION lock_wait_timeout = DEFAULT")

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
