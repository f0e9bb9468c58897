package invalidator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
)

// maria is the private MariaDB every test shares; each test has its own
// database (and so its own invalidation_log) and its own lock name.
var maria *localstack.MariaDB

func TestMain(m *testing.M) {
	if localstack.FuzzWorker() {
		os.Exit(m.Run())
	}
	// The driver logs every broken connection, and these tests break many.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	var err error
	if maria, err = localstack.StartMariaDB(context.Background(), localstack.MariaDBOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "mariadb:", err)
		os.Exit(1)
	}
	code := m.Run()
	maria.Stop()
	os.Exit(code)
}

// logDDL is invalidation_log exactly as the migration creates it.
const logDDL = `CREATE TABLE IF NOT EXISTS invalidation_log (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  grp        VARCHAR(200)    NOT NULL,
  version    BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id)
) ENGINE=InnoDB`

// ddlTableDDL is invalidation_ddl as the origin's migration creates it.
var ddlTableDDL = func() string {
	b, err := os.ReadFile("../../origin/migrations/0003_invalidation_ddl.sql")
	if err != nil {
		panic(err)
	}
	return strings.TrimSuffix(strings.TrimSpace(string(b)), ";")
}()

var databases atomic.Int64

// testLog is a test's own database holding an empty invalidation_log.
type testLog struct {
	t    testing.TB
	name string
	dsn  string
	db   *sql.DB // for the test's own writes and checks
}

func newTestLog(t testing.TB) *testLog {
	t.Helper()
	name := fmt.Sprintf("inv_%d_%d", os.Getpid(), databases.Add(1))
	ctx := context.Background()
	if err := maria.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", maria.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	for _, ddl := range []string{logDDL, ddlTableDDL} {
		if _, err := db.Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		db.Close()
		maria.Exec(context.Background(), "DROP DATABASE "+name)
	})
	return &testLog{t: t, name: name, dsn: maria.DSN(name), db: db}
}

// entry is one row to append to the log.
type entry struct {
	group   string
	version uint64
}

// append inserts entries in one transaction and returns their ids.
func (l *testLog) append(entries ...entry) []uint64 {
	l.t.Helper()
	ids, err := l.tryAppend(entries...)
	if err != nil {
		l.t.Fatal(err)
	}
	return ids
}

// tryAppend is append for goroutines other than the test's.
func (l *testLog) tryAppend(entries ...entry) ([]uint64, error) {
	tx, err := l.db.Begin()
	if err != nil {
		return nil, err
	}
	ids, err := insertIn(tx, entries...)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return ids, tx.Commit()
}

// insertIn appends entries in tx, as the origin's triggers do.
func insertIn(tx *sql.Tx, entries ...entry) ([]uint64, error) {
	var ids []uint64
	for _, e := range entries {
		res, err := tx.Exec("INSERT INTO invalidation_log (grp, version) VALUES (?, ?)", e.group, e.version)
		if err != nil {
			return nil, err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		ids = append(ids, uint64(id))
	}
	return ids, nil
}

// rows counts what is left in the log.
func (l *testLog) rows() int {
	l.t.Helper()
	var n int
	if err := l.db.QueryRow("SELECT COUNT(*) FROM invalidation_log").Scan(&n); err != nil {
		l.t.Fatal(err)
	}
	return n
}

// testConfig is the defaults pointed at the test's database, with a lock of
// its own.
func testConfig(t testing.TB, l *testLog) Config {
	t.Helper()
	cfg := defaultConfig(t)
	cfg.MySQLDSN = l.dsn
	cfg.LockName = "edgecache.invalidator." + l.name
	return cfg
}

// defaultConfig is what envconfig.Load gives with no INVALIDATOR_ variable set.
func defaultConfig(t testing.TB) Config {
	t.Helper()
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "INVALIDATOR_") {
			os.Unsetenv(strings.SplitN(e, "=", 2)[0])
		}
	}
	cfg, err := envconfig.Load[Config]()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testLogger(t testing.TB) *zap.Logger {
	if testing.Verbose() {
		return zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel))
	}
	return zap.NewNop()
}

// running is an Invalidator under test, running in its own goroutine, with
// a hand on its database connections.
type running struct {
	*Invalidator
	net    *netControl
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startInvalidator(t testing.TB, cfg Config, mover Mover, log *zap.Logger) *running {
	t.Helper()
	ctl := newNetControl()
	cfg.MySQLDSN = ctl.dsn(cfg.MySQLDSN)
	inv, err := New(cfg, mover, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Invalidator: inv, net: ctl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		inv.Run(ctx)
	}()
	t.Cleanup(r.stop)
	return r
}

// stop cancels Run and waits for it to return, as SIGTERM does.
func (r *running) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		r.Close()
	})
}

// crash ends the instance as a killed process ends: its TCP connections
// close under it (no RELEASE_LOCK, no COM_QUIT), and it never comes back.
func (r *running) crash() {
	r.net.cut()
	r.stop()
}

// standingBy reports whether r is connected and waiting for the lock.
func (r *running) standingBy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connected && !r.leading
}

// changer is anything with a Changed channel: invalidators and recorders.
type changer interface{ Changed() <-chan struct{} }

// waitUntil waits until cond holds, checking again whenever one of srcs
// changes. It fails the test after a minute: that is a hang, not a slow
// machine.
func waitUntil(t testing.TB, what string, cond func() bool, srcs ...changer) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline)}}
		for _, s := range srcs {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.Changed())})
		}
		if cond() {
			return
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// recorder is a Mover that records every move, can be made to fail per
// group, and can be held (as a paused process would hold it).
type recorder struct {
	mu        sync.Mutex
	moved     map[string]uint64 // group: highest version moved
	calls     []string          // every Move, successful or not, in order
	attempts  map[string]int
	inFlight  int
	flushes   int // FlushAll calls returned
	flushing  int // FlushAll calls in flight
	fail      func(group string) error
	hold      chan struct{} // non-nil: Move waits until it is closed
	flushHold chan struct{} // non-nil: FlushAll waits until it is closed
	changed   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{moved: map[string]uint64{}, attempts: map[string]int{}, changed: make(chan struct{})}
}

func (r *recorder) Move(group string, version uint64) error {
	r.mu.Lock()
	r.calls = append(r.calls, group)
	r.attempts[group]++
	r.inFlight++
	hold := r.hold
	r.wakeLocked()
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	var err error
	if r.fail != nil {
		err = r.fail(group)
	}
	if err == nil {
		r.moved[group] = max(r.moved[group], version)
	}
	r.wakeLocked()
	return err
}

// FlushAll counts flushes; holdFlushes can hold them.
func (r *recorder) FlushAll() error {
	r.mu.Lock()
	r.flushing++
	hold := r.flushHold
	r.wakeLocked()
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushing--
	r.flushes++
	r.wakeLocked()
	return nil
}

// holdFlushes makes every later FlushAll wait until the returned function
// is called.
func (r *recorder) holdFlushes() (release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hold := make(chan struct{})
	r.flushHold = hold
	return func() {
		r.mu.Lock()
		r.flushHold = nil
		r.mu.Unlock()
		close(hold)
	}
}

// inFlightFlushes counts the flushes that have started and not returned.
func (r *recorder) inFlightFlushes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushing
}

func (r *recorder) flushCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushes
}

func (r *recorder) wakeLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

func (r *recorder) setFail(f func(group string) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

// holdMoves makes every later Move wait until the returned function is
// called.
func (r *recorder) holdMoves() (release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hold := make(chan struct{})
	r.hold = hold
	return func() {
		r.mu.Lock()
		r.hold = nil
		r.mu.Unlock()
		close(hold)
	}
}

func (r *recorder) hasMoved(group string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.moved[group]
	return ok
}

// version is the highest version group was moved to.
func (r *recorder) version(group string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved[group]
}

// inFlightMoves counts the moves that have started and not returned.
func (r *recorder) inFlightMoves() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

func (r *recorder) callsSnapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// netControl is a test's hand on one invalidator's database connections:
// it can freeze them (as SIGSTOP freezes a process: nothing is sent or read,
// the sockets stay open) or cut them (as a killed process's kernel closes
// them).
type netControl struct {
	name   string
	mu     sync.Mutex
	conns  []net.Conn
	frozen chan struct{} // non-nil while frozen; closed to thaw
	dead   bool          // cut: no new connections either
}

var netControls atomic.Int64

func newNetControl() *netControl {
	c := &netControl{name: fmt.Sprintf("testnet%d", netControls.Add(1))}
	mysql.RegisterDialContext(c.name, c.dial)
	return c
}

// dsn routes a tcp DSN through this control's dialer.
func (c *netControl) dsn(dsn string) string {
	return strings.Replace(dsn, "@tcp(", "@"+c.name+"(", 1)
}

func (c *netControl) dial(ctx context.Context, addr string) (net.Conn, error) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return nil, errors.New("test: this process is dead")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.conns = append(c.conns, conn)
	c.mu.Unlock()
	return &controlledConn{Conn: conn, ctl: c}, nil
}

func (c *netControl) freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = make(chan struct{})
}

func (c *netControl) thaw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.frozen)
	c.frozen = nil
}

func (c *netControl) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = true
	for _, conn := range c.conns {
		conn.Close()
	}
}

// wait blocks while the connections are frozen.
func (c *netControl) wait() {
	c.mu.Lock()
	frozen := c.frozen
	c.mu.Unlock()
	if frozen != nil {
		<-frozen
	}
}

type controlledConn struct {
	net.Conn
	ctl *netControl
}

func (cc *controlledConn) Read(b []byte) (int, error) {
	cc.ctl.wait()
	return cc.Conn.Read(b)
}

func (cc *controlledConn) Write(b []byte) (int, error) {
	cc.ctl.wait()
	return cc.Conn.Write(b)
}

// lockHolder is the connection id holding the test's lock, 0 when free.
func lockHolder(t testing.TB, l *testLog, cfg Config) int64 {
	t.Helper()
	var id sql.NullInt64
	if err := l.db.QueryRow("SELECT IS_USED_LOCK(?)", cfg.LockName).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id.Int64
}
