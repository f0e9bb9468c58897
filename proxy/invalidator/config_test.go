package invalidator

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := defaultConfig(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.LockRetry >= time.Second {
		t.Errorf("INVALIDATOR_LOCK_RETRY defaults to %s: a standby would take over later than about a second", cfg.LockRetry)
	}
}

// Every problem is reported at once, each under the variable to fix.
func TestValidateNamesEveryBadVariable(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.MySQLDSN = "not a dsn"
	cfg.Memcached = []string{"no-port"}
	cfg.MemcachedTimeout = 0
	cfg.MemcachedMaxIdleConns = 0
	cfg.MemcachedProbeInterval = -time.Second
	cfg.MemcachedDiscovery = "no-port"
	cfg.MemcachedCheckInterval = 0
	cfg.MemcachedEjectAfter = 0
	cfg.MemcachedView = 1500 * time.Microsecond
	cfg.PollInterval = 0
	cfg.DDLInterval = 0
	cfg.Batch = maxBatch + 1
	cfg.MoveConcurrency = 0
	cfg.RetryMax = 0
	cfg.LockName = strings.Repeat("x", maxLockName+1)
	cfg.LockRetry = 0
	cfg.PingInterval = 0
	cfg.SessionTimeout = 1500 * time.Millisecond
	cfg.AdminListen = "8083"
	cfg.ShutdownTimeout = 0
	cfg.LogLevel = "loud"
	cfg.PeerSecret = "two words"
	cfg.LeaseDuration = 0
	cfg.PeerTimeout = 0
	cfg.PeerNetworks = []string{"10.0.0.0"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name := typ.Field(i).Tag.Get("env")
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("%s not reported in:\n%v", name, err)
		}
	}
}

// The session timeout must leave room for the pings and retries that keep
// healthy sessions alive.
func TestSessionTimeoutMustCoverPingsAndRetries(t *testing.T) {
	for _, tc := range []struct {
		session, ping, retry time.Duration
		ok                   bool
	}{
		{5 * time.Second, time.Second, 250 * time.Millisecond, true},
		{2 * time.Second, time.Second, time.Second, true},
		{2 * time.Second, 1500 * time.Millisecond, 250 * time.Millisecond, false},
		{2 * time.Second, 500 * time.Millisecond, 1500 * time.Millisecond, false},
		{0, time.Second, time.Second, false},
	} {
		cfg := defaultConfig(t)
		cfg.SessionTimeout, cfg.PingInterval, cfg.LockRetry = tc.session, tc.ping, tc.retry
		err := cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("session %s, ping %s, retry %s: err %v, want ok=%v", tc.session, tc.ping, tc.retry, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "INVALIDATOR_SESSION_TIMEOUT:") {
			t.Errorf("error does not name INVALIDATOR_SESSION_TIMEOUT: %v", err)
		}
	}
}

// The discovery endpoint is off when empty, and otherwise something one can
// dial: a host and a port.
func TestMemcachedDiscoveryMustBeAnEndpoint(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		ok       bool
	}{
		{"", true},
		{"edge.x1y2z3.cfg.use1.cache.amazonaws.com:11211", true},
		{"[::1]:11211", true},
		{"edge.x1y2z3.cfg.use1.cache.amazonaws.com", false},
		{":11211", false},
		{"cfg.example:0", false},
		{"cfg.example:99999", false},
		{"cfg.example:memcache", false},
	} {
		cfg := defaultConfig(t)
		cfg.MemcachedDiscovery = tc.endpoint
		err := cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.endpoint, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "INVALIDATOR_MEMCACHED_DISCOVERY:") {
			t.Errorf("error does not name INVALIDATOR_MEMCACHED_DISCOVERY: %v", err)
		}
	}
}
