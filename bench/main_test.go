package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"

	"go.uber.org/zap"
)

// The real stack for the tests that need one: a private MariaDB and the real
// origin, in this process, shared by the package's tests.
var originURL string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if spec := os.Getenv(answerServerEnv); spec != "" {
		serveAnswers(spec) // BenchmarkClientCPU's server; never returns
	}
	if localstack.FuzzWorker() {
		return m.Run()
	}
	ctx := context.Background()
	db, err := localstack.StartMariaDB(ctx, localstack.MariaDBOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start mariadb:", err)
		return 1
	}
	defer db.Stop()
	cfg, err := envconfig.Load[origin.Config]()
	if err != nil {
		fmt.Fprintln(os.Stderr, "origin config:", err)
		return 1
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.MySQLDSN = db.DSN("edgecache")
	cfg.DrainDelay = 0
	cfg.AccessLog = "off"
	srv, err := origin.Start(cfg, zap.NewNop())
	if err != nil {
		fmt.Fprintln(os.Stderr, "start origin:", err)
		return 1
	}
	defer srv.Shutdown(context.Background())
	originURL = "http://" + srv.Addr()
	return m.Run()
}

// seedOrigin seeds a small data set into the real origin, in a seed file
// of the test's own.
func seedOrigin(t *testing.T, users, posts int) *Seed {
	t.Helper()
	cfg := SeedConfig{Target: originURL, Users: users, Posts: posts, BodyBytes: 1024,
		Connections: 8, Timeout: 10 * time.Second, File: filepath.Join(t.TempDir(), "seed.json")}
	s, reused, err := LoadOrSeed(context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if reused {
		t.Fatal("a new seed file was reported as reused")
	}
	return s
}

// testWriter sends progress output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// testRunConfig is a closed-loop run of n requests with writes frequent
// enough to exercise the read-after-write check in a short run.
func testRunConfig(name string, targets []string, n int64) RunConfig {
	cfg := DefaultRunConfig()
	cfg.Name = name
	cfg.Targets = targets
	cfg.Rate = 0
	cfg.Connections = 8
	cfg.Duration = 0
	cfg.Requests = n
	cfg.Reads, cfg.Writes = 10, 1
	cfg.ReadMix = ReadMix{Post: 50, List: 25, Profile: 25}
	cfg.OutDir = ""
	cfg.SeedFile = ""
	return cfg
}
