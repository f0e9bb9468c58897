package origin

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap/zapcore"

	"edgecache/proxy/accesslog"
)

// Config is the origin's configuration. The commands read it from ORIGIN_*
// environment variables (deploy/envconfig: the tags are also `origin -h`
// and origin/README.md's table).
//
// The default DSN's options are the ones the origin is built for: times as
// UTC time.Time, one round trip per statement (interpolateParams), short
// network timeouts, utf8mb4, and rejectReadOnly so that a primary demoted to
// a read-only replica by a failover drops the connection instead of failing
// every write.
//
// ORIGIN_QUERY_TIMEOUT is what bounds a request's database work against a
// server that stopped answering: go-sql-driver closes the connection when a
// query's, an Exec's, a BeginTx's, a Ping's or a dial's context ends. Only
// COMMIT and ROLLBACK take no context (database/sql checks it before
// them); readTimeout bounds those, so it is short too. Migrations run
// without readTimeout (see migrationDSN).
type Config struct {
	Listen                      string        `env:"ORIGIN_LISTEN" envDefault:"127.0.0.1:8081" help:"host:port for the API, /healthz, /readyz and /metrics"`
	MySQLDSN                    string        `env:"ORIGIN_MYSQL_DSN" envDefault:"edgecache@tcp(127.0.0.1:3306)/edgecache?parseTime=true&loc=UTC&interpolateParams=true&timeout=2s&readTimeout=2s&writeTimeout=5s&charset=utf8mb4&collation=utf8mb4_unicode_ci&rejectReadOnly=true" help:"go-sql-driver/mysql DSN of the primary (all writes, fresh reads, migrations); must have parseTime=true"`
	ReplicaDSNs                 []string      `env:"ORIGIN_MYSQL_REPLICA_DSNS" help:"comma-separated DSNs of read replicas, used round-robin for reads; empty: every read goes to the primary"`
	MaxConns                    int           `env:"ORIGIN_MYSQL_MAX_CONNS" envDefault:"32" help:"connections per database pool (primary and each replica); open and idle limits are both this"`
	ConnMaxLifetime             time.Duration `env:"ORIGIN_MYSQL_CONN_MAX_LIFETIME" envDefault:"3m" help:"close pooled connections after this long, so a failover that moves a DNS name is followed"`
	QueryTimeout                time.Duration `env:"ORIGIN_QUERY_TIMEOUT" envDefault:"1s" help:"deadline for one database read or one write transaction; past it the request gets 503 (or, for a replica's read, is retried on the primary)"`
	ReplicaDownFor              time.Duration `env:"ORIGIN_REPLICA_DOWN_FOR" envDefault:"5s" help:"a replica whose read failed or timed out is passed over, its reads going to the other replicas or the primary, until a ping answers; it is pinged this often"`
	CacheSeconds                int           `env:"ORIGIN_CACHE_SECONDS" envDefault:"60" help:"s-maxage of cacheable GET responses (how long a shared cache may serve them)"`
	EdgecacheCacheSeconds       int           `env:"ORIGIN_EDGECACHE_CACHE_SECONDS" envDefault:"3600" help:"max-age of cacheable GET responses for edgecache alone, in Edgecache-Cache-Control (RFC 9213 targeted field; the other caches keep ORIGIN_CACHE_SECONDS): edgecache invalidates what every write changes, so it may keep them long; 0: no such field, edgecache follows Cache-Control too"`
	StaleWhileRevalidateSeconds int           `env:"ORIGIN_STALE_WHILE_REVALIDATE_SECONDS" envDefault:"30" help:"stale-while-revalidate of cacheable GET responses (RFC 5861)"`
	StaleIfErrorSeconds         int           `env:"ORIGIN_STALE_IF_ERROR_SECONDS" envDefault:"300" help:"stale-if-error of cacheable GET responses (RFC 5861)"`
	NotFoundCacheSeconds        int           `env:"ORIGIN_NOT_FOUND_CACHE_SECONDS" envDefault:"10" help:"s-maxage of the 404 of a single post or user, which names the group its creation moves (post/{id}=0): a shared cache that honours Edgecache-Groups serves the new resource as soon as it is created; 0: no-store"`
	IdleTimeout                 time.Duration `env:"ORIGIN_IDLE_TIMEOUT" envDefault:"75s" help:"keep-alive idle timeout; keep it above the load balancer's and the proxy's idle times"`
	DrainDelay                  time.Duration `env:"ORIGIN_DRAIN_DELAY" envDefault:"5s" help:"after SIGTERM, /readyz fails this long before the listener closes (load balancer notices)"`
	ShutdownTimeout             time.Duration `env:"ORIGIN_SHUTDOWN_TIMEOUT" envDefault:"30s" help:"after the drain delay, the longest wait for in-flight requests"`
	LogLevel                    string        `env:"ORIGIN_LOG_LEVEL" envDefault:"info" help:"level of the application log (JSON on stderr): debug, info, warn or error"`
	AccessLog                   string        `env:"ORIGIN_ACCESS_LOG" envDefault:"stdout" help:"where the access log (one JSON line per request, never sampled) goes: stdout, stderr, off, or a file path (containing a /, appended to)"`
}

// Validate reports every setting that cannot work, one "VARIABLE:
// problem" error each, joined (deploy/envconfig lists them under their
// variables). It exists because env falls back to the default for a
// variable set to "", but happily accepts "0" or "-1s".
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("ORIGIN_LISTEN", "%v", err)
	}
	if err := validateDSN(c.MySQLDSN); err != nil {
		bad("ORIGIN_MYSQL_DSN", "%v", err)
	}
	for i, dsn := range c.ReplicaDSNs {
		if err := validateDSN(dsn); err != nil {
			bad("ORIGIN_MYSQL_REPLICA_DSNS", "entry %d: %v", i+1, err)
		}
	}
	if c.MaxConns < 1 {
		bad("ORIGIN_MYSQL_MAX_CONNS", "must be at least 1, got %d", c.MaxConns)
	}
	if c.ConnMaxLifetime <= 0 {
		bad("ORIGIN_MYSQL_CONN_MAX_LIFETIME", "must be positive, got %s", c.ConnMaxLifetime)
	}
	if c.QueryTimeout <= 0 {
		bad("ORIGIN_QUERY_TIMEOUT", "must be positive, got %s", c.QueryTimeout)
	}
	if c.ReplicaDownFor <= 0 {
		bad("ORIGIN_REPLICA_DOWN_FOR", "must be positive, got %s", c.ReplicaDownFor)
	}
	if c.CacheSeconds < 0 {
		bad("ORIGIN_CACHE_SECONDS", "must not be negative, got %d", c.CacheSeconds)
	}
	if c.StaleWhileRevalidateSeconds < 0 {
		bad("ORIGIN_STALE_WHILE_REVALIDATE_SECONDS", "must not be negative, got %d", c.StaleWhileRevalidateSeconds)
	}
	if c.StaleIfErrorSeconds < 0 {
		bad("ORIGIN_STALE_IF_ERROR_SECONDS", "must not be negative, got %d", c.StaleIfErrorSeconds)
	}
	if c.EdgecacheCacheSeconds < 0 {
		bad("ORIGIN_EDGECACHE_CACHE_SECONDS", "must not be negative, got %d", c.EdgecacheCacheSeconds)
	}
	if c.NotFoundCacheSeconds < 0 {
		bad("ORIGIN_NOT_FOUND_CACHE_SECONDS", "must not be negative, got %d", c.NotFoundCacheSeconds)
	}
	if c.IdleTimeout <= 0 {
		bad("ORIGIN_IDLE_TIMEOUT", "must be positive, got %s", c.IdleTimeout)
	}
	if c.DrainDelay < 0 {
		bad("ORIGIN_DRAIN_DELAY", "must not be negative, got %s", c.DrainDelay)
	}
	if c.ShutdownTimeout <= 0 {
		bad("ORIGIN_SHUTDOWN_TIMEOUT", "must be positive, got %s", c.ShutdownTimeout)
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		bad("ORIGIN_LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	if err := accesslog.CheckDestination(c.AccessLog); err != nil {
		bad("ORIGIN_ACCESS_LOG", "%v", err)
	}
	return errors.Join(errs...)
}

// validateDSN checks that dsn parses and asks for time.Time values, which
// every query here scans into.
func validateDSN(dsn string) error {
	if dsn == "" {
		return errors.New("empty DSN")
	}
	parsed, err := mysql.ParseDSN(dsn)
	if err != nil {
		return err
	}
	if !parsed.ParseTime {
		return errors.New("parseTime=true is required")
	}
	return nil
}
