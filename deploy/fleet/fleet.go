// Package fleet runs a multi-AZ edgecache fleet on one machine, on loopback
// only, for fault drills: a MariaDB primary and one replica, three "zones"
// (a, b, c) each with a memcached node and a proxy (zones a and b also run an
// origin), and HAProxy in front of the proxies with health checks on each
// proxy's /readyz. Every proxy uses every origin and the whole memcached pool
// (one node per zone, like ElastiCache nodes spread over AZs); the origins
// write to the primary and read from the replica.
//
// The proxies and origins run in this process; MariaDB, memcached and HAProxy
// are child processes (deploy/localstack and /usr/sbin/haproxy). HAProxy
// reaches each proxy, and each proxy each origin, through a relay that a
// drill can freeze (as SIGSTOP freezes a process) or cut (as SIGKILL ends
// one). Fleet's methods are the drills: StopProxy, KillZone, PauseProxy,
// PauseOrigin, PauseMemcached (and their Resume), StopReplica. Stop ends
// everything Start started. Everything the fleet writes lives in its run
// folder (rundir.go).
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Zones are the zone names, in order.
var Zones = []string{"a", "b", "c"}

// originZones are the zones that run an origin.
var originZones = map[string]bool{"a": true, "b": true}

// Health-check settings of HAProxy's backend. /readyz answers from memory
// at once, so a check that takes checkTimeout means the proxy is stuck. A
// proxy is checked every checkInter; after one failed check every
// checkFastInter, so that it is out of rotation checkFall failures later:
// about checkInter/2 + checkTimeout + checkFastInter + checkTimeout, 1 s on
// average, for a proxy that stopped (SIGSTOP) and so times out; less for
// one that refuses or answers 503. checkRise passes bring it back.
const (
	checkInter     = 500 * time.Millisecond
	checkFastInter = 250 * time.Millisecond
	checkTimeout   = 250 * time.Millisecond
	checkFall      = 2
	checkRise      = 2
)

// startTimeout bounds how long HAProxy may take to listen and see every
// proxy healthy.
const startTimeout = 30 * time.Second

// killTimeout is how long KillZone lets the zone's proxy and origin finish
// what they are doing: an abrupt stop, not a drain.
const killTimeout = time.Second

// Options configure Start. The zero value is usable.
type Options struct {
	// Dir is the run folder: HAProxy's generated config, error files and
	// log, and the data folders of MariaDB and memcached, which are new at
	// every start. Empty means a new temporary folder, removed by Stop.
	// Only one fleet runs in a folder at a time.
	Dir string
	// Listen is HAProxy's front (clients connect here); default
	// 127.0.0.1:8080. StatsListen is HAProxy's stats page (/stats, and
	// /stats;csv); default 127.0.0.1:8404. Port 0 means a free port chosen
	// at start.
	Listen, StatsListen string
	// HAProxy is the haproxy binary; default "haproxy" on PATH, else
	// /usr/sbin/haproxy.
	HAProxy string
	// MemcachedMB is each memcached node's item memory; default 64.
	MemcachedMB int
	// Proxy and Origin are the base configurations of every proxy and
	// origin (nil: read from the environment, PROXY_* and ORIGIN_*). The
	// fleet sets the listen addresses, the origins, the memcached pool and
	// the database DSNs itself.
	Proxy  *proxy.Config
	Origin *origin.Config
	// Log receives the fleet's and the services' logs; nil means none.
	Log *zap.Logger
}

// Zone is one zone's services. Origin is nil in zone c. A service a drill
// stopped is nil afterwards.
type Zone struct {
	Name      string
	Proxy     *proxy.Proxy
	Origin    *origin.Server
	Memcached *localstack.Memcached

	proxyAddr, adminAddr string // kept after the proxy stops, for reports
	paused               bool

	// What HAProxy and the proxies connect to instead of the services.
	proxyRelay, adminRelay, originRelay *localstack.Relay
	// Invalidator runs beside the origin (zones a and b): one leads, the
	// other stands by.
	Invalidator *invalidator.Background
}

// ProxyAddr and AdminAddr are the zone's proxy listeners (also after it
// stopped).
func (z *Zone) ProxyAddr() string { return z.proxyAddr }
func (z *Zone) AdminAddr() string { return z.adminAddr }

// Fleet is a running fleet.
type Fleet struct {
	Primary, Replica *localstack.MariaDB
	// Front is HAProxy's front address (host:port), Stats its stats page's.
	Front, Stats string

	log       *zap.Logger
	origins   []string // base URLs the proxies use (through the relays)
	pool      []string // memcached nodes
	proxyCfg  proxy.Config
	originCfg origin.Config
	dir       string
	removeDir bool
	lock      *os.File // the run folder's, held while the fleet runs
	haproxy   *localstack.Process
	zones     map[string]*Zone
	http      *http.Client

	mu       sync.Mutex // guards the zones' services and Replica
	stopOnce sync.Once
}

// Start starts the whole fleet and returns once HAProxy reports every proxy
// healthy. On error, whatever was started is stopped again.
func Start(ctx context.Context, opts Options) (f *Fleet, err error) {
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	f = &Fleet{log: log, zones: make(map[string]*Zone), http: &http.Client{Timeout: 5 * time.Second}}
	defer func() {
		if err != nil {
			f.Stop()
			f = nil
		}
	}()
	if opts.Proxy != nil {
		f.proxyCfg = *opts.Proxy
	} else if f.proxyCfg, err = envconfig.Load[proxy.Config](); err != nil {
		return f, err
	}
	if opts.Origin != nil {
		f.originCfg = *opts.Origin
	} else if f.originCfg, err = envconfig.Load[origin.Config](); err != nil {
		return f, err
	}
	if opts.MemcachedMB == 0 {
		opts.MemcachedMB = 64
	}
	if f.proxyCfg.PeerSecret == "" {
		// Leases on, as in production: one made-up secret for the
		// proxies and the invalidators.
		var b [16]byte
		rand.Read(b[:])
		f.proxyCfg.PeerSecret = hex.EncodeToString(b[:])
	}
	haproxyBin, err := findHAProxy(opts.HAProxy)
	if err != nil {
		return f, err
	}
	if err = f.takeRunDir(opts.Dir); err != nil {
		return f, err
	}
	for _, name := range Zones {
		f.zones[name] = &Zone{Name: name}
	}
	if err = f.startStorage(ctx, opts.MemcachedMB); err != nil {
		return f, err
	}
	if err = f.startServices(); err != nil {
		return f, err
	}
	// HAProxy. A port chosen here may be taken before HAProxy binds it:
	// then try again with new ones.
	listen, stats := opts.Listen, opts.StatsListen
	if listen == "" {
		listen = "127.0.0.1:8080"
	}
	if stats == "" {
		stats = "127.0.0.1:8404"
	}
	for attempt := 0; ; attempt++ {
		err = f.startHAProxy(ctx, haproxyBin, listen, stats)
		if err == nil || attempt == 2 || !(zeroPort(listen) || zeroPort(stats)) {
			break
		}
	}
	if err != nil {
		return f, err
	}
	log.Info("fleet running", zap.String("front", f.Front), zap.String("stats", f.StatsURL()))
	return f, nil
}

// takeRunDir makes dir (a new temporary folder when empty) the fleet's,
// locked against another fleet, without a killed run's data.
func (f *Fleet) takeRunDir(dir string) (err error) {
	f.dir = dir
	if f.dir == "" {
		removeStaleRuns()
		if f.dir, err = os.MkdirTemp("", tempPattern); err != nil {
			return err
		}
		f.removeDir = true
	} else if err = os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	if f.dir, err = filepath.Abs(f.dir); err != nil {
		return err
	}
	if f.lock, err = lockRunDir(f.dir); err != nil {
		f.removeDir = false // another fleet's
		return err
	}
	for _, d := range dataDirs() { // a killed run's
		if err = os.RemoveAll(filepath.Join(f.dir, d)); err != nil {
			return err
		}
	}
	return nil
}

// startStorage starts the databases and the memcached pool, concurrently,
// and makes the replica follow the primary.
func (f *Fleet) startStorage(ctx context.Context, memcachedMB int) error {
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex // the goroutines below fill f
	g.Go(func() error {
		db, err := localstack.StartMariaDB(gctx, localstack.MariaDBOptions{Dir: filepath.Join(f.dir, "primary"), ServerID: 1})
		mu.Lock()
		f.Primary = db
		mu.Unlock()
		return wrap("primary", err)
	})
	g.Go(func() error {
		db, err := localstack.StartMariaDB(gctx, localstack.MariaDBOptions{Dir: filepath.Join(f.dir, "replica"), ServerID: 2})
		mu.Lock()
		f.Replica = db
		mu.Unlock()
		return wrap("replica", err)
	})
	for _, name := range Zones {
		g.Go(func() error {
			mc, err := localstack.StartMemcachedIn(gctx, filepath.Join(f.dir, "memcached-"+name), memcachedMB)
			mu.Lock()
			f.zones[name].Memcached = mc
			mu.Unlock()
			return wrap("memcached "+name, err)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := f.Replica.ReplicateFrom(ctx, f.Primary); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	return nil
}

// startServices starts the origins (each migrates the primary's schema at
// start; the migrations are idempotent), the invalidators beside them, then
// the proxies, each behind its relays.
func (f *Fleet) startServices() (err error) {
	for _, name := range Zones {
		z := f.zones[name]
		f.pool = append(f.pool, z.Memcached.Addr)
		if !originZones[name] {
			continue
		}
		cfg := f.originCfg
		cfg.Listen = "127.0.0.1:0"
		cfg.MySQLDSN = f.Primary.DSN("edgecache")
		cfg.ReplicaDSNs = []string{f.Replica.DSN("edgecache")}
		if z.Origin, err = origin.Start(cfg, f.log.Named("origin-"+name)); err != nil {
			return fmt.Errorf("origin %s: %w", name, err)
		}
		if z.originRelay, err = localstack.StartRelay(z.Origin.Addr()); err != nil {
			return fmt.Errorf("origin %s: %w", name, err)
		}
		f.origins = append(f.origins, "http://"+z.originRelay.Addr())
	}
	for _, name := range Zones {
		if !originZones[name] {
			continue
		}
		if err = f.startInvalidator(f.zones[name]); err != nil {
			return err
		}
	}
	for _, name := range Zones {
		z := f.zones[name]
		// The relays first: the proxy advertises its admin relay to the
		// lease movers, so that freezing or killing it cuts the
		// invalidation channel as it would for a stopped process.
		if z.proxyRelay, err = localstack.StartRelay("127.0.0.1:1"); err != nil {
			return fmt.Errorf("proxy %s: %w", name, err)
		}
		if z.adminRelay, err = localstack.StartRelay("127.0.0.1:1"); err != nil {
			return fmt.Errorf("proxy %s: %w", name, err)
		}
		if err = f.startProxy(z, "127.0.0.1:0", "127.0.0.1:0"); err != nil {
			return err
		}
		z.proxyRelay.Retarget(z.proxyAddr)
		z.adminRelay.Retarget(z.adminAddr)
	}
	return nil
}

// startInvalidator starts zone z's invalidator (after the origins have
// migrated the schema: the log table and its triggers exist).
func (f *Fleet) startInvalidator(z *Zone) error {
	cfg, err := envconfig.Load[invalidator.Config]()
	if err != nil {
		return err
	}
	cfg.MySQLDSN, cfg.Memcached = f.Primary.DSN("edgecache"), f.pool
	cfg.PeerSecret = f.proxyCfg.PeerSecret
	b, err := invalidator.StartBackground(cfg, f.log.Named("invalidator-"+z.Name), metrics.NewSet())
	if err != nil {
		return fmt.Errorf("invalidator %s: %w", z.Name, err)
	}
	z.Invalidator = b
	return nil
}

// startProxy starts zone z's proxy on the given listen addresses.
func (f *Fleet) startProxy(z *Zone, listen, admin string) error {
	cfg := f.proxyCfg
	cfg.Listen, cfg.AdminListen = listen, admin
	cfg.Origins = f.origins
	cfg.Memcached = f.pool
	cfg.PeerAdvertise = z.adminRelay.Addr()
	// HAProxy sets X-Forwarded-For (option forwardfor).
	cfg.TrustXFF = true
	p, err := proxy.Start(cfg, f.log.Named("proxy-"+z.Name))
	if err != nil {
		return fmt.Errorf("proxy %s: %w", z.Name, err)
	}
	z.Proxy, z.proxyAddr, z.adminAddr = p, p.Addr(), p.AdminAddr()
	return nil
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func findHAProxy(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy", nil
	}
	return "", errors.New("haproxy not found: install the Debian package haproxy (make deps)")
}

func zeroPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// resolvePort replaces port 0 in addr by a free port.
func resolvePort(addr string) (string, error) {
	if !zeroPort(addr) {
		return addr, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Config is HAProxy's configuration for this fleet.
func (f *Fleet) Config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by edgecache/deploy/fleet; rewritten at every start.
global
    maxconn 4096
    log stderr format raw local0 info

defaults
    mode http
    log global
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    timeout check %dms
    # Resend only what cannot have reached a proxy: a connection that could
    # not be made (conn-failure), to another proxy (redispatch on every
    # retry). GET and HEAD are also resent when the proxy closed the
    # connection without answering (empty-response: it died with the
    # request in flight); any other method may have been forwarded to an
    # origin and applied, so frontend edge turns that off for it.
    retries 2
    retry-on conn-failure empty-response
    option redispatch 1
    # HAProxy's own answers (no proxy up, a proxy that broke or timed out,
    # a bad request) in the API's JSON error shape, not HTML.
`, checkTimeout.Milliseconds())
	for _, e := range haproxyErrors {
		fmt.Fprintf(&b, "    errorfile %d %s\n", e.status, f.errorFile(e.status))
	}
	fmt.Fprintf(&b, `
frontend edge
    bind %s
    option httplog
    option dontlognull
    option forwardfor
    # Retries beyond a failed connection (retry-on above) only for GET and
    # HEAD (METH_GET matches both).
    http-request disable-l7-retry unless METH_GET
    default_backend proxies

backend proxies
    balance roundrobin
    # /readyz on the proxy's admin listener: 503 while it drains (or when
    # it can use neither memcached nor any origin), so HAProxy stops
    # sending it requests before it closes its listener. It answers from
    # memory, so timeout check (above) is short: a proxy that stopped is
    # out in about a second.
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter %dms fastinter %dms fall %d rise %d
`, f.Front, checkInter.Milliseconds(), checkFastInter.Milliseconds(), checkFall, checkRise)
	for _, name := range Zones {
		z := f.zones[name]
		_, adminPort, _ := net.SplitHostPort(z.adminRelay.Addr())
		fmt.Fprintf(&b, "    server zone-%s %s check port %s\n", name, z.proxyRelay.Addr(), adminPort)
	}
	fmt.Fprintf(&b, `
listen stats
    bind %s
    no log
    stats enable
    stats uri /stats
    stats refresh 2s
`, f.Stats)
	return b.String()
}

// haproxyErrors are the answers HAProxy gives itself, in the API's error
// shape (origin/README.md "The origin API"): codes of its own for what only it can
// see (no proxy up, a proxy that failed), the proxy's codes for the rest.
var haproxyErrors = []struct {
	status        int
	code, message string
}{
	{400, "bad_request", "malformed request"},
	{408, "request_timeout", "request not received in time"},
	{500, "internal", "internal error"},
	{502, "edge_unreachable", "the edge proxy closed the connection or answered badly"},
	{503, "edge_unavailable", "no edge proxy is available"},
	{504, "edge_timeout", "the edge proxy did not answer in time"},
}

func (f *Fleet) errorFile(status int) string {
	return filepath.Join(f.dir, "errors", strconv.Itoa(status)+".http")
}

// writeErrorFiles writes haproxyErrors as HAProxy errorfiles: whole HTTP
// responses.
func (f *Fleet) writeErrorFiles() error {
	if err := os.MkdirAll(filepath.Join(f.dir, "errors"), 0o755); err != nil {
		return err
	}
	for _, e := range haproxyErrors {
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		body.Error.Code, body.Error.Message = e.code, e.message
		js, err := json.Marshal(body)
		if err != nil {
			return err
		}
		js = append(js, '\n')
		resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: %d\r\n\r\n%s",
			e.status, http.StatusText(e.status), len(js), js)
		if err := os.WriteFile(f.errorFile(e.status), []byte(resp), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fleet) startHAProxy(ctx context.Context, bin, listen, stats string) error {
	var err error
	if f.Front, err = resolvePort(listen); err != nil {
		return err
	}
	if f.Stats, err = resolvePort(stats); err != nil {
		return err
	}
	if err := f.writeErrorFiles(); err != nil {
		return err
	}
	cfgPath := filepath.Join(f.dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(f.Config()), 0o644); err != nil {
		return err
	}
	ha, err := localstack.StartProcess(filepath.Join(f.dir, "haproxy.log"), nil, bin, "-f", cfgPath, "-db")
	if err != nil {
		return err
	}
	f.haproxy = ha

	// Ready when the stats page answers and every proxy passed its checks.
	err = ha.WaitReady(ctx, startTimeout, 50*time.Millisecond, func() error {
		states, err := f.ServerStates(ctx)
		if err != nil {
			return err
		}
		if !allUp(states) {
			return fmt.Errorf("not every proxy up: %v", states)
		}
		return nil
	})
	if err != nil {
		f.stopHAProxy()
		return err
	}
	return nil
}

func allUp(states map[string]ServerState) bool {
	if len(states) != len(Zones) {
		return false
	}
	for _, s := range states {
		// Not "UP 1/2 (INI)": HAProxy's state before its first check.
		if s.Status != "UP" || s.CheckStatus != "L7OK" {
			return false
		}
	}
	return true
}

func (f *Fleet) stopHAProxy() {
	f.haproxy.Stop()
	f.haproxy = nil
}

// FrontURL is the URL clients use; StatsURL is HAProxy's stats page.
func (f *Fleet) FrontURL() string { return "http://" + f.Front }
func (f *Fleet) StatsURL() string { return "http://" + f.Stats + "/stats" }

// Dir is the folder with haproxy.cfg and haproxy.log.
func (f *Fleet) Dir() string { return f.dir }

// Zone returns the named zone, or nil.
func (f *Fleet) Zone(name string) *Zone { return f.zones[name] }

// ServerState is one proxy's line in HAProxy's stats.
type ServerState struct {
	Status      string // UP, DOWN, "UP 1/2" (going down), "DOWN 1/2" (going up), MAINT, ...
	CheckStatus string // L7OK, L7STS (bad status), L4CON (refused), ...
}

// Up reports whether HAProxy sends the server new requests.
func (s ServerState) Up() bool { return strings.HasPrefix(s.Status, "UP") }

// Down reports whether HAProxy has taken the server out of rotation.
func (s ServerState) Down() bool {
	return strings.HasPrefix(s.Status, "DOWN") || strings.HasPrefix(s.Status, "MAINT")
}

// ServerStates reads HAProxy's stats CSV: the state of each zone's proxy,
// by zone name.
func (f *Fleet) ServerStates(ctx context.Context) (map[string]ServerState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.Stats+"/stats;csv", nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("haproxy stats: %s", resp.Status)
	}
	r := csv.NewReader(resp.Body)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("haproxy stats: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("haproxy stats: empty")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[strings.TrimPrefix(name, "# ")] = i
	}
	px, sv, st, ck := col["pxname"], col["svname"], col["status"], col["check_status"]
	if st == 0 || ck == 0 {
		return nil, fmt.Errorf("haproxy stats: no status columns in %q", rows[0])
	}
	states := map[string]ServerState{}
	for _, row := range rows[1:] {
		if len(row) <= max(px, sv, st, ck) || row[px] != "proxies" {
			continue
		}
		if zone, ok := strings.CutPrefix(row[sv], "zone-"); ok {
			// "* " marks a check in progress.
			states[zone] = ServerState{Status: row[st], CheckStatus: strings.TrimPrefix(row[ck], "* ")}
		}
	}
	return states, nil
}

// WaitServer polls HAProxy's stats until cond holds for the zone's proxy or
// ctx ends.
func (f *Fleet) WaitServer(ctx context.Context, zone string, cond func(ServerState) bool) (ServerState, error) {
	var last ServerState
	for {
		states, err := f.ServerStates(ctx)
		if err == nil {
			last = states[zone]
			if cond(last) {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("zone %s: haproxy state %q: %w", zone, last.Status, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runningProxy is the named zone, whose proxy must be running; f.mu is held.
func (f *Fleet) runningProxy(name string) (*Zone, error) {
	z, err := f.zone(name)
	if err == nil && z.Proxy == nil {
		err = fmt.Errorf("zone %s: proxy already stopped", name)
	}
	return z, err
}

// runningMemcached is the named zone, whose memcached node must not have
// been killed with it (KillZone); f.mu is held.
func (f *Fleet) runningMemcached(name string) (*Zone, error) {
	z, err := f.zone(name)
	if err == nil && z.Memcached == nil {
		err = fmt.Errorf("zone %s: memcached was killed with its zone", name)
	}
	return z, err
}

func (f *Fleet) zone(name string) (*Zone, error) {
	z := f.zones[name]
	if z == nil {
		return nil, fmt.Errorf("no zone %q (zones: %s)", name, strings.Join(Zones, ", "))
	}
	return z, nil
}

// StopProxy stops the zone's proxy gracefully, as a deploy would: /readyz
// fails at once (Drain), the proxy keeps serving until HAProxy has marked it
// down (at most PROXY_DRAIN_DELAY), then Shutdown closes the listener and
// waits for in-flight requests (at most PROXY_SHUTDOWN_TIMEOUT).
func (f *Fleet) StopProxy(ctx context.Context, zone string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.runningProxy(zone)
	if err != nil {
		return err
	}
	z.Proxy.Drain()
	wctx, cancel := context.WithTimeout(ctx, f.proxyCfg.DrainDelay)
	st, werr := f.WaitServer(wctx, zone, ServerState.Down)
	cancel()
	if werr != nil {
		f.log.Warn("haproxy did not mark the proxy down within the drain delay; stopping it anyway",
			zap.String("zone", zone), zap.Error(werr))
	} else {
		f.log.Info("haproxy marked the draining proxy down", zap.String("zone", zone), zap.String("status", st.Status))
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.proxyCfg.ShutdownTimeout)
	defer cancel()
	err = z.Proxy.Shutdown(sctx)
	z.Proxy = nil
	// Gone like a stopped process: connections to it are refused.
	z.proxyRelay.Kill()
	z.adminRelay.Kill()
	z.proxyRelay, z.adminRelay = nil, nil
	return wrap("zone "+zone+": proxy shutdown", err)
}

// KillZone takes the whole zone away at once, as an AZ outage would: the
// connections to its proxy and origin end and new ones are refused (their
// relays close, as a killed process's sockets do), the services stop
// without draining (a second to finish in-flight work), and its memcached
// node ends. HAProxy notices by its failed checks, the other proxies by
// their connections to the origin.
func (f *Fleet) KillZone(zone string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.zone(zone)
	if err != nil {
		return err
	}
	z.killRelays()
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	var errs []error
	var wg sync.WaitGroup
	if p := z.Proxy; p != nil {
		wg.Go(func() {
			if err := p.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, fmt.Errorf("proxy: %w", err))
			}
		})
		z.Proxy = nil
	}
	if o := z.Origin; o != nil {
		wg.Go(func() {
			o.Shutdown(ctx) // cut short: an outage, not a drain
		})
		z.Origin = nil
	}
	if inv := z.Invalidator; inv != nil {
		wg.Go(inv.Stop)
		z.Invalidator = nil
	}
	wg.Wait()
	if z.Memcached != nil {
		z.Memcached.Resume() // a stopped process ends on SIGTERM only once continued
		z.Memcached.Stop()
		z.Memcached = nil
	}
	f.log.Info("zone killed", zap.String("zone", zone))
	return wrap("zone "+zone, errors.Join(errs...))
}

// killRelays cuts every connection to the zone's proxy and origin.
func (z *Zone) killRelays() {
	for _, r := range []*localstack.Relay{z.proxyRelay, z.adminRelay, z.originRelay} {
		if r != nil {
			r.Kill()
		}
	}
	z.proxyRelay, z.adminRelay, z.originRelay = nil, nil, nil
}

// PauseProxy freezes the zone's proxy as SIGSTOP would: HAProxy's
// connections to it (requests and health checks) are accepted and never
// answered, until ResumeProxy.
func (f *Fleet) PauseProxy(zone string) error {
	return f.pauseRelays(zone, "proxy", true)
}

// ResumeProxy lets a paused proxy's connections move again.
func (f *Fleet) ResumeProxy(zone string) error {
	return f.pauseRelays(zone, "proxy", false)
}

// PauseOrigin freezes the zone's origin as SIGSTOP would: the proxies'
// connections to it are accepted and never answered, until ResumeOrigin.
func (f *Fleet) PauseOrigin(zone string) error {
	return f.pauseRelays(zone, "origin", true)
}

// ResumeOrigin lets a paused origin's connections move again.
func (f *Fleet) ResumeOrigin(zone string) error {
	return f.pauseRelays(zone, "origin", false)
}

func (f *Fleet) pauseRelays(zone, service string, pause bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.zone(zone)
	if err != nil {
		return err
	}
	relays := []*localstack.Relay{z.proxyRelay, z.adminRelay}
	if service == "origin" {
		relays = []*localstack.Relay{z.originRelay}
	}
	for _, r := range relays {
		if r == nil {
			return fmt.Errorf("zone %s has no %s running", zone, service)
		}
		if pause {
			r.Pause()
		} else {
			r.Resume()
		}
	}
	return nil
}

// PauseMemcached freezes the zone's memcached node (SIGSTOP): connections
// to it hang as to an unreachable host. ResumeMemcached continues it.
func (f *Fleet) PauseMemcached(zone string) error {
	return f.pauseResume(zone, true)
}

// ResumeMemcached continues a paused memcached node.
func (f *Fleet) ResumeMemcached(zone string) error {
	return f.pauseResume(zone, false)
}

func (f *Fleet) pauseResume(zone string, pause bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, err := f.runningMemcached(zone)
	if err != nil {
		return err
	}
	if pause {
		err = z.Memcached.Pause()
	} else {
		err = z.Memcached.Resume()
	}
	if err == nil {
		z.paused = pause
	}
	return err
}

// StopReplica stops the MariaDB replica: the origins' replica reads fail.
func (f *Fleet) StopReplica() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Replica == nil {
		return errors.New("replica already stopped")
	}
	f.Replica.Stop()
	f.Replica = nil
	return nil
}

// Stop ends everything Start started: HAProxy, the relays, the proxies
// (without drain: HAProxy is gone), the origins, memcached, the replica and
// the primary, and removes their data folders. It is safe to call more
// than once.
func (f *Fleet) Stop() {
	f.stopOnce.Do(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stopHAProxy()
		for _, z := range f.zones {
			z.killRelays()
		}
		var wg sync.WaitGroup
		for _, z := range f.zones {
			if p := z.Proxy; p != nil {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), f.proxyCfg.ShutdownTimeout)
					defer cancel()
					if err := p.Shutdown(ctx); err != nil {
						f.log.Warn("proxy shutdown", zap.String("zone", z.Name), zap.Error(err))
					}
				})
				z.Proxy = nil
			}
		}
		wg.Wait()
		for _, z := range f.zones {
			if inv := z.Invalidator; inv != nil {
				wg.Go(inv.Stop)
				z.Invalidator = nil
			}
			if o := z.Origin; o != nil {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), f.originCfg.ShutdownTimeout)
					defer cancel()
					if err := o.Shutdown(ctx); err != nil {
						f.log.Warn("origin shutdown", zap.String("zone", z.Name), zap.Error(err))
					}
				})
				z.Origin = nil
			}
		}
		wg.Wait()
		for _, z := range f.zones {
			if z.Memcached != nil {
				if z.paused {
					z.Memcached.Resume()
				}
				z.Memcached.Stop()
				z.Memcached = nil
			}
		}
		if f.Replica != nil {
			f.Replica.Stop()
			f.Replica = nil
		}
		if f.Primary != nil {
			f.Primary.Stop()
			f.Primary = nil
		}
		if f.lock == nil { // the folder is another fleet's
			return
		}
		for _, d := range dataDirs() {
			os.RemoveAll(filepath.Join(f.dir, d))
		}
		if f.removeDir {
			os.RemoveAll(f.dir)
		}
		f.lock.Close()
	})
}
