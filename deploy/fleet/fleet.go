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
// PauseOrigin, PauseMemcached (and their Resume), StopReplica, and the
// memcached membership commands (members.go) with spare nodes to add.
// Stop ends everything Start started. Everything the fleet writes lives in its run
// folder (rundir.go).
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"

	"go.uber.org/zap"
)

// Zones are the zone names, in order.
var Zones = []string{"a", "b", "c"}

// originZones are the zones that run an origin.
var originZones = map[string]bool{"a": true, "b": true}

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
	// The invalidator's admin listener (membership commands, metrics).
	invalidatorAdmin     *http.Server
	invalidatorAdminAddr string
	memcachedAddr        string // kept after the node is killed with its zone
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

	memcachedMB   int
	spares        map[string]*localstack.Memcached // by address
	sparesStarted int                              // names their folders

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
	f = &Fleet{log: log, zones: make(map[string]*Zone), http: &http.Client{Timeout: 5 * time.Second},
		spares: make(map[string]*localstack.Memcached)}
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
	f.memcachedMB = opts.MemcachedMB
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
	if err = f.startStorage(ctx); err != nil {
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

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
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

// FrontURL is the URL clients use; StatsURL is HAProxy's stats page.
func (f *Fleet) FrontURL() string { return "http://" + f.Front }
func (f *Fleet) StatsURL() string { return "http://" + f.Stats + "/stats" }

// Dir is the folder with haproxy.cfg and haproxy.log.
func (f *Fleet) Dir() string { return f.dir }

// Zone returns the named zone, or nil.
func (f *Fleet) Zone(name string) *Zone { return f.zones[name] }

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
			wg.Go(z.stopInvalidator)
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
		for addr, m := range f.spares {
			m.Resume() // a stopped process ends on SIGTERM only once continued
			m.Stop()
			delete(f.spares, addr)
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
