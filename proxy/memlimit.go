package proxy

import (
	"runtime/debug"
	"time"
)

// minMemoryLimit is the least soft memory limit derived from what the
// proxy keeps: room for what its connections and requests in flight hold
// while its caches are still empty.
const minMemoryLimit = 64 << 20

// MemoryLimit is the soft memory limit this proxy's process should have:
// PROXY_MEMORY_LIMIT, or when 0 half as much again as the weights of the
// L1 and the group memory (most of the live heap, see l1Weight), at least
// minMemoryLimit. Without a limit Go lets the heap grow to twice the live
// heap before collecting (GOGC=100): a full 64 MiB L1 took 154 MiB of RSS
// (proxy/README.md). The half is room for the garbage between collections
// and for what requests hold.
func (p *Proxy) MemoryLimit() int64 {
	if p.cfg.MemoryLimit > 0 {
		return p.cfg.MemoryLimit
	}
	return max((p.l1.Weight()+p.groupsOf.weight())*3/2, minMemoryLimit)
}

// LimitMemory sets the process's soft memory limit to MemoryLimit now and
// every second after, until stop is closed. The limit belongs to the
// process, not to one proxy: the proxy command runs this for its one
// proxy, unless GOMEMLIMIT is set.
func (p *Proxy) LimitMemory(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		debug.SetMemoryLimit(p.MemoryLimit())
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
