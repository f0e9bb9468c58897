package proxy

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The least soft memory limit derived from what the proxy keeps
// (MemoryLimit): room for what its connections and requests in flight hold
// while its caches are still empty; and the least room above the live heap,
// for when they hold more than the caches' half: a limit under the live
// heap would have the collector run without end.
const (
	minMemoryLimit    = 64 << 20
	minMemoryHeadroom = 16 << 20
)

// MemoryLimit is the soft memory limit this proxy's process should have,
// with liveHeap bytes live after the last collection: PROXY_MEMORY_LIMIT,
// or when 0 half as much again as the L1's bound and what the group memory
// weighs (most of the live heap, see l1Weight), at least minMemoryLimit
// and minMemoryHeadroom above the live heap. Without a limit Go lets the
// heap grow to twice the live heap before collecting (GOGC=100): a full 64
// MiB L1 took 166 MiB of RSS (proxy/README.md). The half is room for the
// garbage between collections and for what requests hold.
//
// The L1 counts at its bound, not at what it weighs now: what is promised
// is RSS near the bound, and a limit just above a live heap that is still
// growing toward it had the collector mark that whole heap five times a
// second (a 38 MiB L1 on the 100:1 mix at 3,000/s).
func (p *Proxy) MemoryLimit(liveHeap int64) int64 {
	if p.cfg.MemoryLimit > 0 {
		return p.cfg.MemoryLimit
	}
	return max((p.cfg.L1Bytes+p.groupsOf.weight())*3/2, liveHeap+minMemoryHeadroom, minMemoryLimit)
}

// LimitMemory sets the process's soft memory limit to MemoryLimit now and
// every second after, until stop is closed. The limit belongs to the
// process, not to one proxy: the proxy command runs this for its one
// proxy, unless GOMEMLIMIT is set.
func (p *Proxy) LimitMemory(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for {
		metrics.Read(live)
		debug.SetMemoryLimit(p.MemoryLimit(int64(live[0].Value.Uint64())))
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
