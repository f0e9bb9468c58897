package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"

	"edgecache/deploy/envconfig"
	"edgecache/proxy/invalidator"
)

// TestZeroStaleReadsUnderConcurrency with leases: three proxies serving
// L1 hits without asking memcached.
func TestZeroStaleReadsUnderConcurrencyWithLeases(t *testing.T) {
	base := realStack(t)
	node := leaseNode(t)
	var ps []*Proxy
	for range 3 {
		p := startProxy(t, leaseConfig(node, base))
		ps = append(ps, p)
	}
	for _, p := range ps {
		waitLease(t, p)
	}
	zeroStaleReads(t, ps)
	var free uint64
	for _, p := range ps {
		f, _ := p.lease.Hits()
		free += f
	}
	if free == 0 {
		t.Error("no L1 hit under a lease: the test did not exercise leases")
	}
}

// Issue 9: a write that bypasses the edge (SQL typed into the primary)
// reaches the proxies' L1 too: the durable invalidator moves its groups
// and tells the lease holders before it deletes the log rows.
func TestWritesThatBypassTheEdgeReachL1(t *testing.T) {
	ps, inv := leaseStack(t, "bypass")
	db, err := sql.Open("mysql", dbPrimary.DSN("edgecache"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	u := createUser(t, ps[0])
	post := createPost(t, ps[0], u, "through the edge")
	path := fmt.Sprintf("/v1/posts/%d", post.ID)
	for _, p := range ps {
		warmL1(t, p, path)
	}
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "UPDATE posts SET body = 'typed into the primary' WHERE id = ?", post.ID); err != nil {
		t.Fatal(err)
	}
	// The invalidator deletes a row only after its group moved and the
	// lease holders acknowledged (or their leases ran out).
	group := fmt.Sprintf("post/%d", post.ID)
	deadline := time.Now().Add(time.Minute)
	for {
		ch := inv.Changed()
		var left int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM invalidation_log WHERE grp = ?", group).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the invalidator never applied the update")
		}
		select {
		case <-ch:
		case <-time.After(time.Second): // Changed covers this instance's applies; a poll covers the rest
		}
	}
	for i, p := range ps {
		var pp apiPost
		r := get(t, p, path)
		decodeInto(t, r.Body(), &pp)
		if pp.Body != "typed into the primary" {
			t.Fatalf("proxy %d: STALE %q (Cache-Status %q) after the invalidator applied the update", i, pp.Body, cacheStatus(r))
		}
	}
}

// leaseStack is a real stack whose two proxies hold invalidation leases
// over a memcached node of their own, with a durable invalidator that
// tells them (the shared one is stopped: it would apply the log to the
// shared node only).
func leaseStack(t *testing.T, lock string) ([]*Proxy, *invalidator.Background) {
	t.Helper()
	base := realStack(t)
	withoutDurableInvalidator(t)
	node := leaseNode(t)
	ps := []*Proxy{startProxy(t, leaseConfig(node, base)), startProxy(t, leaseConfig(node, base))}
	icfg, err := envconfig.Load[invalidator.Config]()
	if err != nil {
		t.Fatal(err)
	}
	icfg.MySQLDSN, icfg.Memcached, icfg.PeerSecret = dbPrimary.DSN("edgecache"), []string{node.Addr}, testPeerSecret
	icfg.LockName = fmt.Sprintf("edgecache.invalidator.%s.%d", lock, time.Now().UnixNano())
	forgetMembership(t)
	inv, err := invalidator.StartBackground(icfg, zap.NewNop(), metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inv.Stop)
	return ps, inv
}
