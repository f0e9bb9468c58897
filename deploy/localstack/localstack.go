// Package localstack starts private MariaDB and memcached processes on
// loopback, for `make run` and for the integration tests. It never touches a
// system-wide server: every instance lives in its own data folder, listens on
// a free port, and Stop ends exactly the process it started.
package localstack

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver this package's DSNs are for
)

// DSNOptions are the go-sql-driver/mysql settings that work against MariaDB
// 10.11: times as UTC time.Time, one round trip per statement, short
// network timeouts, utf8mb4, and rejectReadOnly (origin/config.go says why).
const DSNOptions = "parseTime=true&loc=UTC&interpolateParams=true&timeout=2s&readTimeout=2s&writeTimeout=5s&charset=utf8mb4&collation=utf8mb4_unicode_ci&rejectReadOnly=true"

// startTimeout bounds how long a server may take to answer after start.
const startTimeout = 60 * time.Second

// Process is a child server started by StartProcess: its output goes to a
// log file, and it dies with this process even without Stop.
type Process struct {
	name   string // as started, for errors
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// StartProcess starts name with args, the environment plus env, and its
// stdout and stderr in the file logPath.
func StartProcess(logPath string, env []string, name string, args ...string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	// If the parent dies without calling Stop, the kernel ends the child
	// rather than leaving a stray server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// WaitReady calls ready every interval until it returns nil. It gives up
// when the process exits, when ctx ends (returning ctx.Err()), or after
// timeout, with ready's last error; the errors end with the process's log.
// It does not stop the process.
func (p *Process) WaitReady(ctx context.Context, timeout, interval time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited during start-up:\n%s", p.name, p.Tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s: %w\n%s", p.name, timeout, err, p.Tail())
		}
	}
}

// Stop sends SIGTERM, waits up to 20 s, then kills. A nil Process is
// already stopped.
func (p *Process) Stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// Pause stops the process with SIGSTOP, so that its clients hang as on a
// host that stopped answering (the kernel still accepts connections), and
// returns once every thread of it has stopped: the signal is asynchronous,
// and a request sent right after it could still be answered. Resume
// continues the process.
func (p *Process) Pause() error {
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for !p.stopped() {
		select {
		case <-p.exited:
			return errors.New("the process exited instead of stopping")
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d did not stop within %s", p.cmd.Process.Pid, startTimeout)
		}
	}
	return nil
}

// Resume continues a paused process.
func (p *Process) Resume() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

// stopped reports whether every thread of the process is in the stopped
// state: "T" after the parenthesised command name in /proc/PID/task/*/stat.
func (p *Process) stopped() bool {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.cmd.Process.Pid))
	if err != nil || len(stats) == 0 {
		return false
	}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		i := bytes.LastIndexByte(b, ')')
		if err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Tail returns the end of the process's log, for error messages.
func (p *Process) Tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the server binds it; callers retry on a failed start.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// MariaDB is a private mariadbd.
type MariaDB struct {
	Dir      string // data folder; the socket and log live here too
	Port     int    // TCP port on 127.0.0.1
	User     string // an account with every privilege, no password
	proc     *Process
	socket   string
	serverID int
}

// MariaDBOptions configure StartMariaDB.
type MariaDBOptions struct {
	// Dir is the data folder. Empty means a new temporary folder, removed by
	// Stop. An existing, initialised folder is reused (make run keeps data).
	Dir string
	// ServerID > 0 turns on the binary log, so the instance can be a
	// replication primary (and must differ between primary and replica).
	ServerID int
	// Port is the TCP port on 127.0.0.1; 0 means a free one.
	Port int
}

// StartMariaDB initialises the data folder if needed, starts mariadbd and
// waits until it answers. The database "edgecache" and a user "edgecache"
// (no password, every privilege) exist when it returns.
func StartMariaDB(ctx context.Context, opts MariaDBOptions) (*MariaDB, error) {
	dir, temporary := opts.Dir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "edgecache-mariadb-")
		if err != nil {
			return nil, err
		}
		dir, temporary = d, true
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "mysql")); err != nil {
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(data, 0o755); err != nil {
			return nil, err
		}
		out, err := exec.CommandContext(ctx, "mariadb-install-db", "--no-defaults",
			"--datadir="+data, "--tmpdir="+filepath.Join(dir, "tmp"), "--user=root",
			"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
		if err != nil {
			if temporary {
				os.RemoveAll(dir)
			}
			return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
		}
	}
	m := &MariaDB{Dir: dir, User: "edgecache", socket: filepath.Join(dir, "sock")}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = m.start(ctx, opts.ServerID, opts.Port); lastErr == nil {
			return m, nil
		}
	}
	if temporary {
		os.RemoveAll(dir)
	}
	return nil, lastErr
}

// start starts mariadbd on port (0: a free one).
func (m *MariaDB) start(ctx context.Context, serverID, port int) error {
	if err := os.MkdirAll(filepath.Join(m.Dir, "tmp"), 0o755); err != nil {
		return err
	}
	var err error
	if port == 0 {
		if port, err = freePort(); err != nil {
			return err
		}
	}
	m.serverID = serverID
	args := []string{"--no-defaults",
		"--datadir=" + filepath.Join(m.Dir, "data"),
		// A private tmpdir: the shared /tmp may be cleaned under a running server.
		"--tmpdir=" + filepath.Join(m.Dir, "tmp"),
		"--socket=" + m.socket,
		"--pid-file=" + filepath.Join(m.Dir, "mariadbd.pid"),
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port),
		"--user=root",
		"--skip-name-resolve",
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=48M",
		"--innodb-flush-log-at-trx-commit=2",
		"--max-connections=500",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_unicode_ci",
	}
	if serverID > 0 {
		args = append(args, "--server-id="+strconv.Itoa(serverID),
			"--log-bin="+filepath.Join(m.Dir, "data", "binlog"),
			"--binlog-format=ROW",
			"--relay-log="+filepath.Join(m.Dir, "data", "relay"),
			// With the binary log on, only SUPER may create triggers (error
			// 1419) unless this is set, as on RDS, where the application's
			// user has no SUPER. Row-based logging makes it safe.
			"--log-bin-trust-function-creators=1",
		)
	}
	proc, err := StartProcess(filepath.Join(m.Dir, "mariadbd.log"), nil, "mariadbd", args...)
	if err != nil {
		return err
	}
	m.proc, m.Port = proc, port
	if err := m.waitReady(ctx); err != nil {
		proc.Stop()
		return err
	}
	return nil
}

// waitReady polls the socket until the server answers, then creates the
// project's database and account.
func (m *MariaDB) waitReady(ctx context.Context) error {
	root, err := sql.Open("mysql", "root@unix("+m.socket+")/?"+DSNOptions)
	if err != nil {
		return err
	}
	defer root.Close()
	err = m.proc.WaitReady(ctx, startTimeout, 50*time.Millisecond, func() error {
		pingCtx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return root.PingContext(pingCtx)
	})
	if err != nil {
		return err
	}
	for _, stmt := range []string{
		"CREATE DATABASE IF NOT EXISTS edgecache",
		"CREATE USER IF NOT EXISTS 'edgecache'@'%'",
		"GRANT ALL PRIVILEGES ON *.* TO 'edgecache'@'%' WITH GRANT OPTION",
	} {
		if _, err := root.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// DSN is a go-sql-driver/mysql DSN for database db over TCP.
func (m *MariaDB) DSN(db string) string {
	return fmt.Sprintf("%s@tcp(127.0.0.1:%d)/%s?%s", m.User, m.Port, db, DSNOptions)
}

// Exec runs statements on this server as the project's account, outside any
// database. Tests use it to steer replication.
func (m *MariaDB) Exec(ctx context.Context, stmts ...string) error {
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// ReplicateFrom makes m a replica of primary (which must have a ServerID)
// from the start of primary's binary log, and waits until the replica's IO
// and SQL threads run.
func (m *MariaDB) ReplicateFrom(ctx context.Context, primary *MariaDB) error {
	err := m.Exec(ctx,
		"STOP SLAVE",
		"RESET SLAVE ALL",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='', MASTER_USE_GTID=no, MASTER_CONNECT_RETRY=1",
			primary.Port, primary.User),
		"START SLAVE",
	)
	if err != nil {
		return err
	}
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		io, sqlRunning, lastErr, err := slaveStatus(ctx, db)
		if err != nil {
			return err
		}
		if io == "Yes" && sqlRunning == "Yes" {
			return nil
		}
		if lastErr != "" && io == "No" {
			return fmt.Errorf("replica IO thread stopped: %s", lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("replication did not start in time")
}

// slaveStatus reads Slave_IO_Running, Slave_SQL_Running and Last_IO_Error
// from SHOW SLAVE STATUS, whose column set varies between versions.
func slaveStatus(ctx context.Context, db *sql.DB) (io, sqlRunning, lastErr string, err error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return "", "", "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", "", "", err
	}
	if !rows.Next() {
		return "", "", "", rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", "", "", err
	}
	for i, c := range cols {
		switch c {
		case "Slave_IO_Running":
			io = vals[i].String
		case "Slave_SQL_Running":
			sqlRunning = vals[i].String
		case "Last_IO_Error":
			lastErr = vals[i].String
		}
	}
	return io, sqlRunning, lastErr, rows.Err()
}

// Restart stops mariadbd (SIGTERM, as a service restart does) and starts it
// again on the same data folder and port, for drills.
func (m *MariaDB) Restart(ctx context.Context) error {
	m.proc.Stop()
	return m.start(ctx, m.serverID, m.Port)
}

// Pause stops mariadbd (Process.Pause): connections are accepted, queries
// get no reply. Resume continues it. Tests of a hung database use them.
func (m *MariaDB) Pause() error  { return m.proc.Pause() }
func (m *MariaDB) Resume() error { return m.proc.Resume() }

// Stop ends mariadbd and, for a temporary data folder, removes it.
func (m *MariaDB) Stop() {
	m.proc.Stop()
	if strings.HasPrefix(filepath.Base(m.Dir), "edgecache-mariadb-") {
		os.RemoveAll(m.Dir)
	}
}

// Memcached is a private memcached.
type Memcached struct {
	Addr     string // host:port on 127.0.0.1
	proc     *Process
	dir      string
	memoryMB int
}

// StartMemcached starts memcached with memoryMB of item memory on a port the
// kernel chooses, its port file and log in a new temporary folder, and
// waits until it answers.
func StartMemcached(ctx context.Context, memoryMB int) (*Memcached, error) {
	dir, err := os.MkdirTemp("", "edgecache-memcached-")
	if err != nil {
		return nil, err
	}
	return startMemcached(ctx, dir, memoryMB, "127.0.0.1:0")
}

// StartMemcachedIn is StartMemcached with its files in dir, which it
// empties first: a run killed before Stop leaves its folder behind, and the
// next start in the same place cleans it up. Stop removes dir.
func StartMemcachedIn(ctx context.Context, dir string, memoryMB int) (*Memcached, error) {
	return StartMemcachedAt(ctx, dir, memoryMB, 0)
}

// StartMemcachedAt is StartMemcachedIn on 127.0.0.1:port (0: a free one).
func StartMemcachedAt(ctx context.Context, dir string, memoryMB, port int) (*Memcached, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return startMemcached(ctx, dir, memoryMB, "127.0.0.1:"+strconv.Itoa(port))
}

func startMemcached(ctx context.Context, dir string, memoryMB int, listen string) (*Memcached, error) {
	portFile := filepath.Join(dir, "ports")
	proc, err := StartProcess(filepath.Join(dir, "memcached.log"),
		[]string{"MEMCACHED_PORT_FILENAME=" + portFile},
		"memcached", "-u", "root", "-l", listen, "-U", "0",
		"-m", strconv.Itoa(memoryMB), "-c", "4096", "-t", "2")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m := &Memcached{proc: proc, dir: dir, memoryMB: memoryMB}
	err = proc.WaitReady(ctx, startTimeout, 20*time.Millisecond, func() error {
		if m.Addr == "" {
			if m.Addr = readPortFile(portFile); m.Addr == "" {
				return errors.New("memcached has not written its port yet")
			}
		}
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err != nil {
			return fmt.Errorf("memcached at %s does not answer: %w", m.Addr, err)
		}
		c.Close()
		return nil
	})
	if err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// readPortFile is the address memcached wrote to its port file (lines like
// "TCP INET: 40123"), "" before it has.
func readPortFile(path string) string {
	b, _ := os.ReadFile(path)
	addr := ""
	for _, line := range strings.Split(string(b), "\n") {
		if port, ok := strings.CutPrefix(line, "TCP INET: "); ok {
			addr = "127.0.0.1:" + strings.TrimSpace(port)
		}
	}
	return addr
}

// Restart ends memcached and starts it again, empty, on the same address:
// a node that lost its memory (a crash, a reboot, a replaced ElastiCache
// node).
func (m *Memcached) Restart(ctx context.Context) error {
	m.Resume() // a stopped process ends on SIGTERM only once continued
	m.Stop()
	return m.Start(ctx)
}

// Start starts a stopped memcached again, empty, on its old address.
func (m *Memcached) Start(ctx context.Context) error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	n, err := startMemcached(ctx, m.dir, m.memoryMB, m.Addr)
	if err != nil {
		return err
	}
	*m = *n
	return nil
}

// Stop ends memcached and removes its folder.
func (m *Memcached) Stop() {
	m.proc.Stop()
	os.RemoveAll(m.dir)
}

// Pause stops memcached (Process.Pause), so that connections hang as on an
// unreachable host; Resume continues it. Tests of node failure use them.
func (m *Memcached) Pause() error  { return m.proc.Pause() }
func (m *Memcached) Resume() error { return m.proc.Resume() }

// FuzzWorker reports whether this test binary runs as a `go test -fuzz`
// worker. Workers run only the fuzz targets, which need no servers, and are
// killed when fuzzing ends, which would leave the servers' folders behind:
// a TestMain starts nothing for them.
func FuzzWorker() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() == "true"
}
