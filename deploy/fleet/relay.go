package fleet

import (
	"io"
	"net"
	"sync"
)

// relay is a TCP relay in front of one in-process service (a proxy's
// listeners, an origin), so that a drill can do to the service what
// SIGSTOP and SIGKILL do to a process:
//   - pause: connections are still accepted (the kernel completes the
//     handshake of a stopped process) but no byte moves in either direction
//     until resume;
//   - kill: the listener and every connection close at once, so that peers
//     see their connections end and new ones refused.
type relay struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	paused chan struct{} // non-nil while paused; closed on resume
	conns  map[net.Conn]struct{}
	done   sync.WaitGroup
}

// startRelay listens on a free loopback port and relays to target.
func startRelay(target string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	r.done.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the relay's host:port.
func (r *relay) Addr() string { return r.ln.Addr().String() }

func (r *relay) accept() {
	defer r.done.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			c.Close()
			return
		}
		r.done.Add(1)
		go func() {
			defer r.done.Done()
			r.serve(c)
		}()
	}
}

// track remembers c for kill; false once killed.
func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) serve(client net.Conn) {
	defer r.forget(client)
	<-r.gate()
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	if !r.track(server) {
		server.Close()
		return
	}
	defer r.forget(server)
	var wg sync.WaitGroup
	wg.Go(func() { r.copy(server, client) })
	r.copy(client, server)
	wg.Wait()
}

// copy moves bytes from src to dst, holding each chunk while paused, and
// passes the end of src on as the end of dst's writing side.
func (r *relay) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-r.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
					return
				}
			}
			dst.Close()
			return
		}
	}
}

func (r *relay) forget(c net.Conn) {
	c.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
}

// gate returns a channel that is closed while the relay is not paused.
func (r *relay) gate() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused != nil {
		return r.paused
	}
	return closedChan
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Pause holds every byte from now on; Resume lets them through.
func (r *relay) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused == nil {
		r.paused = make(chan struct{})
	}
}

func (r *relay) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused != nil {
		close(r.paused)
		r.paused = nil
	}
}

// Kill closes the listener and every connection, and waits for the relay's
// goroutines. A paused relay is resumed first so that none stays blocked.
func (r *relay) Kill() {
	r.ln.Close()
	r.mu.Lock()
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	r.Resume()
	r.done.Wait()
}
