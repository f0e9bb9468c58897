package invalidator

import (
	"context"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"

	"edgecache/proxy/lease"
	"edgecache/proxy/store"
)

// Background is an invalidator with its own memcached store, running in
// this process until Stop: what bin/invalidator runs, and what make run and
// the fleet start beside their origins.
type Background struct {
	*Invalidator
	store     *store.Store
	cancel    context.CancelFunc
	done      chan struct{}
	stopStore chan struct{}
}

// StartBackground builds the store and the invalidator from cfg and starts
// both; the store's metrics go to set.
func StartBackground(cfg Config, log *zap.Logger, set *metrics.Set) (*Background, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mc, err := store.New(store.Config{Nodes: cfg.Memcached, Timeout: cfg.MemcachedTimeout,
		MaxIdleConns: cfg.MemcachedMaxIdleConns, ProbeInterval: cfg.MemcachedProbeInterval},
		log.Named("store"), set, "edgecache_invalidator")
	if err != nil {
		return nil, err
	}
	inv, err := New(cfg, mc, log)
	if err != nil {
		return nil, err
	}
	networks, err := lease.ParseNetworks(cfg.PeerNetworks) // valid: Validate parsed it
	if err != nil {
		return nil, err
	}
	n := lease.NewNotifier(lease.NotifierConfig{Secret: cfg.PeerSecret, Duration: cfg.LeaseDuration, Timeout: cfg.PeerTimeout, Networks: networks},
		mc, log.Named("lease"), set, "edgecache_invalidator")
	inv.notify = func(groups []string) error {
		keys := make([]string, len(groups))
		for i, g := range groups {
			keys[i] = store.GroupKey(g)
		}
		return n.Notify(keys)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Background{Invalidator: inv, store: mc, cancel: cancel, done: make(chan struct{}), stopStore: make(chan struct{})}
	// The store probes nodes marked down and puts them back in use: without
	// it a node that failed three times would stay skipped.
	go mc.Run(b.stopStore)
	go func() {
		defer close(b.done)
		inv.Run(ctx)
	}()
	return b, nil
}

// Stop finishes the batch in hand, releases the lock, and stops.
func (b *Background) Stop() {
	b.cancel()
	<-b.done
	close(b.stopStore)
	b.Invalidator.Close()
}
