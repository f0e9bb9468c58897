package origin

import (
	"strings"
	"testing"
	"time"

	"edgecache/deploy/envconfig"
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := envconfig.Load[Config]()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8081" || cfg.CacheSeconds != 60 || cfg.MaxConns != 32 ||
		cfg.QueryTimeout != time.Second || cfg.ReplicaDownFor != 5*time.Second || cfg.DrainDelay != 5*time.Second || cfg.ReplicaDSNs != nil ||
		!strings.HasPrefix(cfg.MySQLDSN, "edgecache@tcp(127.0.0.1:3306)/edgecache?parseTime=true") {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv("ORIGIN_LISTEN", "0.0.0.0:9000")
	t.Setenv("ORIGIN_MYSQL_REPLICA_DSNS", "r@tcp(a:3306)/e?parseTime=true,r@tcp(b:3306)/e?parseTime=true")
	t.Setenv("ORIGIN_CACHE_SECONDS", "5")
	t.Setenv("ORIGIN_DRAIN_DELAY", "0s")
	t.Setenv("ORIGIN_LOG_LEVEL", "") // empty falls back to the default
	cfg, err := envconfig.Load[Config]()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9000" || len(cfg.ReplicaDSNs) != 2 || cfg.CacheSeconds != 5 || cfg.DrainDelay != 0 || cfg.LogLevel != "info" {
		t.Fatalf("%+v", cfg)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		env, value, complaint string
	}{
		{"ORIGIN_LISTEN", "8081", "ORIGIN_LISTEN"},
		{"ORIGIN_MYSQL_DSN", "edgecache@tcp(127.0.0.1:3306)/edgecache", "parseTime=true is required"},
		{"ORIGIN_MYSQL_DSN", "::not a dsn::", "ORIGIN_MYSQL_DSN"},
		{"ORIGIN_MYSQL_REPLICA_DSNS", "a@tcp(x:1)/e?parseTime=true,,", "entry 2"},
		{"ORIGIN_MYSQL_MAX_CONNS", "0", "ORIGIN_MYSQL_MAX_CONNS"},
		{"ORIGIN_MYSQL_CONN_MAX_LIFETIME", "0s", "ORIGIN_MYSQL_CONN_MAX_LIFETIME"},
		{"ORIGIN_QUERY_TIMEOUT", "-1s", "ORIGIN_QUERY_TIMEOUT"},
		{"ORIGIN_REPLICA_DOWN_FOR", "0s", "ORIGIN_REPLICA_DOWN_FOR"},
		{"ORIGIN_CACHE_SECONDS", "-1", "ORIGIN_CACHE_SECONDS"},
		{"ORIGIN_STALE_WHILE_REVALIDATE_SECONDS", "-1", "ORIGIN_STALE_WHILE_REVALIDATE_SECONDS"},
		{"ORIGIN_STALE_IF_ERROR_SECONDS", "-1", "ORIGIN_STALE_IF_ERROR_SECONDS"},
		{"ORIGIN_IDLE_TIMEOUT", "0s", "ORIGIN_IDLE_TIMEOUT"},
		{"ORIGIN_DRAIN_DELAY", "-1s", "ORIGIN_DRAIN_DELAY"},
		{"ORIGIN_SHUTDOWN_TIMEOUT", "0s", "ORIGIN_SHUTDOWN_TIMEOUT: must be positive"},
		{"ORIGIN_LOG_LEVEL", "loud", "ORIGIN_LOG_LEVEL"},
		{"ORIGIN_ACCESS_LOG", "syslog", "ORIGIN_ACCESS_LOG"},
		{"ORIGIN_ACCESS_LOG", "/no/such/folder/access.log", "ORIGIN_ACCESS_LOG: folder /no/such/folder"},
		{"ORIGIN_QUERY_TIMEOUT", "1 second", "ORIGIN_QUERY_TIMEOUT: want a duration"},
		{"ORIGIN_MYSQL_MAX_CONNS", "many", "ORIGIN_MYSQL_MAX_CONNS: want a whole number"},
	} {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			_, err := envconfig.Load[Config]()
			if err == nil || !strings.Contains(err.Error(), tc.complaint) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.complaint)
			}
		})
	}
}
