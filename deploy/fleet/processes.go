// Starting the fleet's processes: MariaDB, memcached, then the origins,
// invalidators and proxies behind their relays.

package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sync/errgroup"
)

// startStorage starts the databases and the memcached pool, concurrently,
// and makes the replica follow the primary.
func (f *Fleet) startStorage(ctx context.Context) error {
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
			mc, err := localstack.StartMemcachedIn(gctx, filepath.Join(f.dir, "memcached-"+name), f.memcachedMB)
			mu.Lock()
			f.zones[name].Memcached = mc
			if mc != nil {
				f.zones[name].memcachedAddr = mc.Addr
			}
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
	return wrap("invalidator "+z.Name+" admin", z.startInvalidatorAdmin())
}

// startProxy starts zone z's proxy on the given listen addresses.
func (f *Fleet) startProxy(z *Zone, listen, admin string) error {
	cfg := f.proxyCfg
	cfg.Listen, cfg.AdminListen = listen, admin
	cfg.Origins = f.origins
	cfg.Memcached = f.pool
	cfg.PeerAdvertise = z.adminRelay.Addr()
	// HAProxy sets X-Forwarded-For (option forwardfor), from loopback:
	// the client is the address it reports.
	cfg.TrustXFF = true
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	p, err := proxy.Start(cfg, f.log.Named("proxy-"+z.Name))
	if err != nil {
		return fmt.Errorf("proxy %s: %w", z.Name, err)
	}
	z.Proxy, z.proxyAddr, z.adminAddr = p, p.Addr(), p.AdminAddr()
	return nil
}
