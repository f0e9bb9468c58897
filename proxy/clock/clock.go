// Package clock is the time the invalidation protocol reads: the
// machine's monotonic clock in production, a simulated one in the fault
// simulator (proxy/simulate_test.go), where a lease duration or a peer
// timeout passes in a step instead of a second.
package clock

import "time"

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	Sleep(d time.Duration)
}

// Real is the machine's clock.
var Real Clock = real{}

type real struct{}

func (real) Now() time.Time        { return time.Now() }
func (real) Sleep(d time.Duration) { time.Sleep(d) }

// Or is c, or Real when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}
