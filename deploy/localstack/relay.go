package localstack

import (
	"io"
	"net"
	"sync"
)

// Relay is a TCP relay in front of one server, so that a drill or a test
// can do to the server, or to the path to it, what production does:
//   - Pause: connections are still accepted (the kernel completes the
//     handshake of a stopped process) but no byte moves in either direction
//     until Resume — SIGSTOP, or an unreachable host;
//   - DropAnswers: requests reach the server, which acts on them, but its
//     answers are lost and the client's connection closes — a reset or a
//     timeout on the way back;
//   - Kill: the listener and every connection close at once, so that peers
//     see their connections end and new ones refused — a killed process.
type Relay struct {
	ln net.Listener

	mu     sync.Mutex
	target string
	paused chan struct{} // non-nil while paused; closed on resume
	drop   bool
	conns  map[net.Conn]struct{} // nil once killed
	done   sync.WaitGroup
}

// StartRelay listens on a free loopback port and relays to target.
func StartRelay(target string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	r.done.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the relay's host:port.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Retarget sends new connections to target (a restarted server on a new
// port), keeping the relay's own address.
func (r *Relay) Retarget(target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target = target
}

// DropAnswers makes the relay lose (true) or pass (false) the server's answers.
func (r *Relay) DropAnswers(drop bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop = drop
}

func (r *Relay) dropping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drop
}

func (r *Relay) accept() {
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

// track remembers c for Kill; false once killed.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) serve(client net.Conn) {
	defer r.forget(client)
	<-r.gate()
	r.mu.Lock()
	target := r.target
	r.mu.Unlock()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	if !r.track(server) {
		server.Close()
		return
	}
	defer r.forget(server)
	var wg sync.WaitGroup
	wg.Go(func() { r.copy(server, client, false) })
	r.copy(client, server, true)
	wg.Wait()
}

// copy moves bytes from src to dst, holding each chunk while paused, and
// passes the end of src on as the end of dst's writing side. answers marks
// the server-to-client direction, the one DropAnswers cuts.
func (r *Relay) copy(dst, src net.Conn, answers bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-r.gate()
			if answers && r.dropping() {
				dst.Close()
				src.Close()
				return
			}
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

func (r *Relay) forget(c net.Conn) {
	c.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
}

// gate returns a channel that is closed while the relay is not paused.
func (r *Relay) gate() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused != nil {
		return r.paused
	}
	return closedChan
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Pause holds every byte from now on; Resume lets them through.
func (r *Relay) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused == nil {
		r.paused = make(chan struct{})
	}
}

// Resume ends a Pause.
func (r *Relay) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused != nil {
		close(r.paused)
		r.paused = nil
	}
}

// Kill closes the listener and every connection, and waits for the relay's
// goroutines. A paused relay is resumed first so that none stays blocked.
func (r *Relay) Kill() {
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
