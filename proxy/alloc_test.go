//go:build !race

// The race detector allocates on its own; budgets are held without it
// (make test runs this file in a run of its own).

package proxy

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// Allocation budgets of a hit through the whole handler (recv, hash,
// lookup, validate, deliver), held by a test as fasthttp holds its own:
// an L1 hit under the lease allocates nothing; an L2 hit decodes the
// entry and reads memcached (one request alone: nothing to share the round
// trip with).
func TestHitAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a warm proxy")
	}
	for _, tc := range []struct {
		name   string
		l1     int64
		leases bool
		max    float64
	}{
		{"l1 under the lease", 64 << 20, true, 0},
		// 23 of the 30 are gomemcache's GetMulti (a goroutine, channel and
		// maps per call; per item its struct, value and key); the rest are
		// the lookup's keys and its share of the batch, and the decoded
		// entry's groups and fields.
		{"l2", 0, false, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := hitProxy(t, tc.l1, tc.leases)
			var req fasthttp.Request
			req.SetRequestURI("/bench/hit")
			req.Header.SetHost("edge.test")
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, nil)
			handler := p.server.Handler
			freeBefore, _ := p.lease.Hits()
			n := testing.AllocsPerRun(200, func() {
				ctx.Response.Reset()
				handler(&ctx)
			})
			freeAfter, _ := p.lease.Hits()
			t.Logf("%s: %.1f allocations per hit (%d of the hits under the lease)", tc.name, n, freeAfter-freeBefore)
			if len(ctx.Response.Body()) != 1024 {
				t.Fatalf("body %d bytes", len(ctx.Response.Body()))
			}
			if n > tc.max {
				t.Errorf("%s: %.1f allocations per hit, budget %.0f", tc.name, n, tc.max)
			}
			if tc.leases && freeAfter-freeBefore < 190 {
				t.Errorf("only %d of 201 hits were L1 hits under the lease", freeAfter-freeBefore)
			}
		})
	}
}
