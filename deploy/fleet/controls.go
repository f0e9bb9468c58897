// The controls a drill (and the fleet command's console) turns on a running
// fleet: stop, kill, freeze and resume its parts.

package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"edgecache/deploy/localstack"

	"go.uber.org/zap"
)

// killTimeout is how long KillZone lets the zone's proxy and origin finish
// what they are doing: an abrupt stop, not a drain.
const killTimeout = time.Second

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
	wg.Go(z.stopInvalidator)
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
