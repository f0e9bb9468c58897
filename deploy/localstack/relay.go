package localstack

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Relay is a TCP relay in front of a server, for fault drills: it can drop
// the server's answers (the request reaches the server, which acts on it;
// the answer never reaches the client, whose connection is closed — as
// after a reset or a timeout on the way back), or cut every connection and
// refuse new ones (a partition).
type Relay struct {
	Addr string // host:port clients connect to
	ln   net.Listener
	to   string
	drop atomic.Bool
	cut  atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// StartRelay listens on a free loopback port and relays to the server at to.
func StartRelay(to string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{Addr: ln.Addr().String(), ln: ln, to: to, conns: map[net.Conn]struct{}{}}
	go r.serve()
	return r, nil
}

// DropAnswers makes the relay drop (true) or pass (false) the server's answers.
func (r *Relay) DropAnswers(drop bool) { r.drop.Store(drop) }

// Cut closes every relayed connection and refuses new ones (true), or
// relays again (false).
func (r *Relay) Cut(cut bool) {
	r.cut.Store(cut)
	if !cut {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.Close()
	}
}

// Close stops the relay and closes its connections.
func (r *Relay) Close() {
	r.ln.Close()
	r.Cut(true)
}

func (r *Relay) track(c net.Conn, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.conns[c] = struct{}{}
	} else {
		delete(r.conns, c)
	}
}

func (r *Relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if r.cut.Load() {
			c.Close()
			continue
		}
		go r.relay(c)
	}
}

func (r *Relay) relay(c net.Conn) {
	s, err := net.Dial("tcp", r.to)
	if err != nil {
		c.Close()
		return
	}
	r.track(c, true)
	r.track(s, true)
	defer func() {
		c.Close()
		s.Close()
		r.track(c, false)
		r.track(s, false)
	}()
	go func() { io.Copy(s, c); s.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 && r.drop.Load() {
			return
		}
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
