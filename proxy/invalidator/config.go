package invalidator

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap/zapcore"

	"edgecache/proxy/lease"
)

// Config is the invalidator's configuration. The commands read it from
// INVALIDATOR_* environment variables (deploy/envconfig: the tags are also
// `invalidator -h` and proxy/README.md's table). Every field has a default;
// Validate catches what env cannot (an empty variable silently falls back
// to the default, a zero interval, settings that only work together).
type Config struct {
	MySQLDSN  string   `env:"INVALIDATOR_MYSQL_DSN" envDefault:"edgecache@tcp(127.0.0.1:3306)/edgecache?parseTime=true&loc=UTC&interpolateParams=true&timeout=2s&readTimeout=5s&writeTimeout=5s&charset=utf8mb4&collation=utf8mb4_unicode_ci&rejectReadOnly=true" help:"go-sql-driver/mysql DSN of the primary that holds invalidation_log (the lock lives there too: never a replica)"`
	Memcached []string `env:"INVALIDATOR_MEMCACHED" envDefault:"127.0.0.1:11211" help:"comma-separated memcached host:port seed list, the same as the proxies' PROXY_MEMCACHED: the first leader ever publishes it as membership generation 1, and it is the desired membership until an operator changes that (POST /memcached/add, remove, replace)"`

	MemcachedTimeout       time.Duration `env:"INVALIDATOR_MEMCACHED_TIMEOUT" envDefault:"250ms" help:"memcached: dial and per-operation timeout"`
	MemcachedMaxIdleConns  int           `env:"INVALIDATOR_MEMCACHED_MAX_IDLE_CONNS" envDefault:"64" help:"memcached: idle connections kept per node in each of the store's pools; at least INVALIDATOR_MOVE_CONCURRENCY, or moves dial per operation"`
	MemcachedProbeInterval time.Duration `env:"INVALIDATOR_MEMCACHED_PROBE_INTERVAL" envDefault:"500ms" help:"memcached: how often a down node is probed and the membership document read"`
	MemcachedDiscovery     string        `env:"INVALIDATOR_MEMCACHED_DISCOVERY" envDefault:"" help:"memcached: an ElastiCache for Memcached configuration endpoint host:port (auto discovery); when set, the leading invalidator takes the nodes memcached should have from the cluster's node list instead of memcached_desired, INVALIDATOR_MEMCACHED staying the seeds; empty: off"`

	MemcachedCheckInterval time.Duration `env:"INVALIDATOR_MEMCACHED_CHECK_INTERVAL" envDefault:"1s" help:"memcached membership: how often the leader probes every node, takes the next step of a change and rewrites the membership document"`
	MemcachedEjectAfter    time.Duration `env:"INVALIDATOR_MEMCACHED_EJECT_AFTER" envDefault:"10s" help:"memcached membership: a node failing its probe this long is taken out of the membership (it is flushed and taken back in once it answers)"`
	MemcachedView          time.Duration `env:"INVALIDATOR_MEMCACHED_VIEW" envDefault:"2s" help:"memcached membership: how long a follower trusts the generation it last read (written in the document); the leader waits this long between generations"`

	PollInterval    time.Duration `env:"INVALIDATOR_POLL_INTERVAL" envDefault:"10ms" help:"how often the leader reads invalidation_log when it has caught up; bounds the commit-to-memcached delay"`
	Batch           int           `env:"INVALIDATOR_BATCH" envDefault:"1000" help:"most log rows read, moved and deleted per round; a full batch is followed at once by the next"`
	MoveConcurrency int           `env:"INVALIDATOR_MOVE_CONCURRENCY" envDefault:"32" help:"most group moves in flight at once"`
	DDLInterval     time.Duration `env:"INVALIDATOR_DDL_INTERVAL" envDefault:"1s" help:"how often the leader looks for schema changes the triggers cannot log (TRUNCATE, DROP, RENAME, a restored table, a dropped trigger); one found flushes memcached"`
	RetryMax        time.Duration `env:"INVALIDATOR_RETRY_MAX" envDefault:"2s" help:"a group whose move failed is retried after a delay that doubles from twice the poll interval up to this"`

	PeerSecret    string        `env:"INVALIDATOR_PEER_SECRET" envDefault:"" help:"the proxies' PROXY_PEER_SECRET: after moving groups, the invalidator tells every proxy holding an invalidation lease, and waits for its acknowledgement or its lease to end, before deleting the rows; without it, such proxies are revoked and their leases waited out"`
	LeaseDuration time.Duration `env:"INVALIDATOR_LEASE_DURATION" envDefault:"1s" help:"the longest lease any proxy holds (PROXY_LEASE_DURATION): how long to wait when the lease registry in memcached was lost"`
	PeerNetworks  []string      `env:"INVALIDATOR_PEER_NETWORKS" envDefault:"127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,::1/128,fc00::/7" help:"the proxies' PROXY_PEER_NETWORKS: networks (CIDR) where lease holders may be; no invalidation is sent to an address outside them"`
	PeerTimeout   time.Duration `env:"INVALIDATOR_PEER_TIMEOUT" envDefault:"200ms" help:"how long a lease holder has to acknowledge before it is revoked and its lease waited out"`

	LockName       string        `env:"INVALIDATOR_LOCK_NAME" envDefault:"edgecache.invalidator" help:"MySQL named lock (GET_LOCK) that elects the one active invalidator; every instance of one deployment uses the same name"`
	LockRetry      time.Duration `env:"INVALIDATOR_LOCK_RETRY" envDefault:"250ms" help:"how often a standby tries the lock; a standby takes over at most this long after the leader's connection is gone"`
	PingInterval   time.Duration `env:"INVALIDATOR_PING_INTERVAL" envDefault:"1s" help:"how often the leader checks, on its locked connection, that it still holds the lock"`
	SessionTimeout time.Duration `env:"INVALIDATOR_SESSION_TIMEOUT" envDefault:"5s" help:"wait_timeout (whole seconds) of the locked connection: a paused leader's session is dropped, and its lock freed, after this much silence"`

	AdminListen     string        `env:"INVALIDATOR_ADMIN_LISTEN" envDefault:"127.0.0.1:8083" help:"admin listener (healthz, readyz, metrics, pprof, POST invalidate-all); keep it private"`
	ShutdownTimeout time.Duration `env:"INVALIDATOR_SHUTDOWN_TIMEOUT" envDefault:"5s" help:"on SIGTERM, the longest wait for the batch in hand and the admin listener's requests"`
	LogLevel        string        `env:"INVALIDATOR_LOG_LEVEL" envDefault:"info" help:"level of the application log (JSON on stderr): debug, info, warn or error"`
}

// maxBatch keeps a batch's DELETE under MySQL's 65,535 placeholders.
const maxBatch = 10000

// maxLockName is MySQL's limit on a named lock (MariaDB has none).
const maxLockName = 64

// Validate reports every invalid setting at once, one "VARIABLE: problem"
// error each, joined (deploy/envconfig lists them under their variables).
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if c.MySQLDSN == "" {
		bad("INVALIDATOR_MYSQL_DSN", "empty DSN")
	} else if _, err := mysql.ParseDSN(c.MySQLDSN); err != nil {
		bad("INVALIDATOR_MYSQL_DSN", "%v", err)
	}
	if len(c.Memcached) == 0 {
		bad("INVALIDATOR_MEMCACHED", "at least one memcached host:port is needed")
	}
	for _, m := range c.Memcached {
		if err := checkNode(m); err != nil {
			bad("INVALIDATOR_MEMCACHED", "%v", err)
		}
	}
	if c.MemcachedDiscovery != "" {
		if err := checkEndpoint(c.MemcachedDiscovery); err != nil {
			bad("INVALIDATOR_MEMCACHED_DISCOVERY", "%v", err)
		}
	}
	if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
		bad("INVALIDATOR_ADMIN_LISTEN", "want host:port, got %q", c.AdminListen)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"INVALIDATOR_MEMCACHED_TIMEOUT", c.MemcachedTimeout},
		{"INVALIDATOR_MEMCACHED_PROBE_INTERVAL", c.MemcachedProbeInterval},
		{"INVALIDATOR_MEMCACHED_CHECK_INTERVAL", c.MemcachedCheckInterval},
		{"INVALIDATOR_POLL_INTERVAL", c.PollInterval},
		{"INVALIDATOR_DDL_INTERVAL", c.DDLInterval},
		{"INVALIDATOR_RETRY_MAX", c.RetryMax},
		{"INVALIDATOR_LOCK_RETRY", c.LockRetry},
		{"INVALIDATOR_PING_INTERVAL", c.PingInterval},
		{"INVALIDATOR_LEASE_DURATION", c.LeaseDuration},
		{"INVALIDATOR_SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "must be > 0, got %s", p.d)
		}
	}
	// The document holds the view in whole milliseconds, at most 2^32-1.
	if c.MemcachedView < time.Millisecond || c.MemcachedView%time.Millisecond != 0 || c.MemcachedView.Milliseconds() > math.MaxUint32 {
		bad("INVALIDATOR_MEMCACHED_VIEW", "want a whole number of milliseconds, from 1ms to about 49 days, got %s", c.MemcachedView)
	}
	// A node is judged by its probes: ejecting it before a second probe
	// would take it out for one slow answer.
	if c.MemcachedEjectAfter <= 0 || c.MemcachedEjectAfter < 2*c.MemcachedCheckInterval {
		bad("INVALIDATOR_MEMCACHED_EJECT_AFTER", "must be > 0 and at least twice INVALIDATOR_MEMCACHED_CHECK_INTERVAL (%s), got %s", c.MemcachedCheckInterval, c.MemcachedEjectAfter)
	}
	if strings.ContainsAny(c.PeerSecret, " \t\r\n") {
		bad("INVALIDATOR_PEER_SECRET", "must not contain spaces or line breaks")
	}
	if _, err := lease.ParseNetworks(c.PeerNetworks); err != nil {
		bad("INVALIDATOR_PEER_NETWORKS", "%v", err)
	}
	if c.PeerTimeout <= 0 || c.PeerTimeout >= c.LeaseDuration {
		bad("INVALIDATOR_PEER_TIMEOUT", "must be > 0 and below INVALIDATOR_LEASE_DURATION (%s), got %s", c.LeaseDuration, c.PeerTimeout)
	}
	if c.Batch < 1 || c.Batch > maxBatch {
		bad("INVALIDATOR_BATCH", "want 1 to %d, got %d", maxBatch, c.Batch)
	}
	if c.MoveConcurrency < 1 {
		bad("INVALIDATOR_MOVE_CONCURRENCY", "must be >= 1, got %d", c.MoveConcurrency)
	}
	if c.MemcachedMaxIdleConns < 1 {
		bad("INVALIDATOR_MEMCACHED_MAX_IDLE_CONNS", "must be >= 1, got %d", c.MemcachedMaxIdleConns)
	}
	if c.LockName == "" || len(c.LockName) > maxLockName {
		bad("INVALIDATOR_LOCK_NAME", "want 1 to %d characters, got %q", maxLockName, c.LockName)
	}
	// wait_timeout is whole seconds. The leader's pings are what keep its
	// session alive, and a standby's retries keep its own: both must come
	// well inside the timeout or a healthy instance would be dropped.
	switch {
	case c.SessionTimeout < time.Second || c.SessionTimeout%time.Second != 0:
		bad("INVALIDATOR_SESSION_TIMEOUT", "wait_timeout is in whole seconds: want >= 1s and a whole number of seconds, got %s", c.SessionTimeout)
	case c.SessionTimeout < 2*c.PingInterval:
		bad("INVALIDATOR_SESSION_TIMEOUT", "must be at least twice INVALIDATOR_PING_INTERVAL (%s), got %s", c.PingInterval, c.SessionTimeout)
	case c.SessionTimeout < 2*c.LockRetry:
		bad("INVALIDATOR_SESSION_TIMEOUT", "must be at least twice INVALIDATOR_LOCK_RETRY (%s), got %s", c.LockRetry, c.SessionTimeout)
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		bad("INVALIDATOR_LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	return errors.Join(errs...)
}

// checkEndpoint says whether addr is a host:port one can dial: a host and a
// port from 1 to 65535 (a configuration endpoint has both).
func checkEndpoint(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("want a port from 1 to 65535, got %q", addr)
	}
	return nil
}
