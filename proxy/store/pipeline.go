package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"edgecache/proxy/ring"
)

// Pipelines: a fill's commands that go to one node written at once and
// answered in order, one round trip instead of one per command (a miss's
// lease and re-read; its entry and the lease given back). Reads of several
// keys on one node (getMultiNode) use the same connections: gomemcache's
// GetMulti starts a goroutine per node and allocates per item more than
// a lookup's whole work. Memcached runs
// one connection's commands in the order they arrive, so each sees what
// the ones before it did: a get after an add reads after the add took
// effect. Other connections' commands may come between them, as between
// separate round trips. gomemcache sends one command per round trip, so
// pipelines keep connections of their own.

// AddThenGet adds it (as Add does) and then, if the add succeeded, reads
// keys (as GetMulti does) and creates the group keys of create that are
// missing (a new incarnation, as Ensure does), in one round trip when they
// all live on one node, else one after the other (and then creates
// nothing: the caller ensures them). Each command is sent after the one
// before it took effect. A pipeline's creates are sent whatever the add's
// outcome (memcached cannot make them depend on it): a missing group
// created is what any fill's snapshot does. got is empty when the add
// failed.
func (s *Store) AddThenGet(it *Item, keys, create []string) (got Got, added error) {
	it = s.placedItem(it)
	n := s.ring.Node(it.Key)
	placed, orig, one := s.placedOn(n, keys)
	placedCreate, _, oneCreate := s.placedOn(n, create)
	if !one || !oneCreate || !legalKeys(it.Key) || !legalKeys(placed...) || !legalKeys(placedCreate...) {
		if added = s.add(it); added != nil {
			return Got{}, added
		}
		got.Items, got.Unavailable = s.GetMulti(keys)
		return got, nil
	}
	groups := make([]Group, len(create))
	createdErrs := make([]error, len(create))
	err := s.pipeline("pipeline", n, func(w *bufio.Writer) {
		writeStore(w, "add", it)
		writeGets(w, placed)
		for i, k := range placedCreate {
			groups[i] = NewGroup(0)
			writeStore(w, "add", &Item{Key: k, Value: groups[i].Bytes(), Flags: s.stamp()})
		}
	}, func(r *bufio.Reader) (err error) {
		if added, err = readStored(r); err != nil {
			return err
		}
		if got.Items, err = readValues(r, placed); err != nil {
			return err
		}
		for i := range placedCreate {
			if createdErrs[i], err = readStored(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Got{}, err
	}
	if added != nil {
		return Got{}, added
	}
	for k, v := range got.Items {
		if !s.kept(n, v) {
			delete(got.Items, k) // read as missing, as GetMulti does
		}
	}
	for p, k := range orig {
		if v, ok := got.Items[p]; ok {
			delete(got.Items, p)
			got.Items[k] = v
		}
	}
	for i, k := range create {
		if createdErrs[i] == nil {
			if got.Created == nil {
				got.Created = make(map[string]Group, len(create))
			}
			got.Created[k] = groups[i]
		}
	}
	return got, nil
}

// Got is what AddThenGet read and created.
type Got struct {
	Items       map[string]*Item // the keys read, under the keys asked for
	Unavailable []string         // keys whose node was down or failing
	Created     map[string]Group // the groups it created, by key asked for
}

// SetThenDelete stores items (as Set does) and then deletes key del (as
// Delete does; nothing if del is ""), in one round trip when they all live
// on one node, else one after the other. The delete is sent after every
// set took effect. errs[i] is items[i]'s error; the delete's is not
// reported (a lease given back late only costs a waiter time).
func (s *Store) SetThenDelete(items []*Item, del string) (errs []error) {
	errs = make([]error, len(items))
	placed := make([]*Item, len(items))
	n := -1
	one := legalKeys(del)
	for i, it := range items {
		placed[i] = s.placedItem(it)
		switch m := s.ring.Node(placed[i].Key); {
		case n == -1:
			n = m
		case m != n:
			one = false
		}
		one = one && legalKeys(placed[i].Key)
	}
	placedDel := del
	if del != "" {
		placedDel = s.placed(del)
		if n == -1 {
			n = s.ring.Node(placedDel)
		}
		one = one && s.ring.Node(placedDel) == n
	}
	if !one || n == -1 {
		for i, it := range items {
			errs[i] = s.Set(it)
		}
		if del != "" {
			s.Delete(del)
		}
		return errs
	}
	err := s.pipeline("pipeline", n, func(w *bufio.Writer) {
		for _, it := range placed {
			writeStore(w, "set", it)
		}
		if del != "" {
			writeDelete(w, placedDel)
		}
	}, func(r *bufio.Reader) (err error) {
		for i := range placed {
			if errs[i], err = readStored(r); err != nil {
				return err
			}
		}
		if del != "" {
			_, err = readDeleted(r)
		}
		return err
	})
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// placedOn is keys as placed now (orig maps a placed key back to the key
// asked for, where they differ), and whether every one is on node n.
func (s *Store) placedOn(n int, keys []string) (placed []string, orig map[string]string, one bool) {
	placed = keys
	for i, k := range keys {
		p := s.placed(k)
		if s.ring.Node(p) != n {
			return nil, nil, false
		}
		if p != k {
			if orig == nil {
				orig = make(map[string]string)
				placed = append([]string(nil), keys...)
			}
			orig[p] = k
			placed[i] = p
		}
	}
	return placed, orig, true
}

// pipeline sends what write writes to node n and reads the answers with
// read, in one round trip, with health tracking: it counts as operation
// op ("pipeline" for several commands). read returns an error only when the connection can no
// longer be trusted (a network error, an answer out of protocol); each
// command's own outcome is the caller's.
func (s *Store) pipeline(op string, n int, write func(*bufio.Writer), read func(*bufio.Reader) error) error {
	if !s.up(n) {
		s.m.skipped.Inc()
		return ErrUnavailable
	}
	start := time.Now()
	err := s.roundTrip(n, write, read)
	s.observe(op, n, start, err)
	if nodeFailed(err) {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}

func (s *Store) roundTrip(n int, write func(*bufio.Writer), read func(*bufio.Reader) error) error {
	c, err := s.pipes.get(s, n)
	if err != nil {
		return err
	}
	if err = c.nc.SetDeadline(time.Now().Add(s.timeout)); err == nil {
		write(c.rw.Writer)
		if err = c.rw.Flush(); err == nil {
			err = read(c.rw.Reader)
		}
	}
	if err != nil {
		c.nc.Close()
		return err
	}
	s.pipes.put(n, c, s.maxIdle)
	return nil
}

// pipeConns are the idle connections of pipelines, per node.
type pipeConns struct {
	mu   sync.Mutex
	idle [ring.MaxNodes][]*pipeConn
}

type pipeConn struct {
	nc net.Conn
	rw *bufio.ReadWriter
}

func (p *pipeConns) get(s *Store, n int) (*pipeConn, error) {
	p.mu.Lock()
	if l := len(p.idle[n]); l > 0 {
		c := p.idle[n][l-1]
		p.idle[n] = p.idle[n][:l-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	dial := s.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	addr := s.ring.Addr(n)
	nc, err := dial(ctx, addr.Network(), addr.String())
	if err != nil {
		return nil, err
	}
	return &pipeConn{nc: nc, rw: bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))}, nil
}

func (p *pipeConns) put(n int, c *pipeConn, maxIdle int) {
	p.mu.Lock()
	if len(p.idle[n]) < max(maxIdle, 1) {
		p.idle[n] = append(p.idle[n], c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.nc.Close()
}

// legalKeys reports whether every key may go on a command line as it is
// (gomemcache's rule; an empty key counts as legal: no key).
func legalKeys(keys ...string) bool {
	for _, k := range keys {
		if len(k) > 250 {
			return false
		}
		for i := 0; i < len(k); i++ {
			if k[i] <= ' ' || k[i] == 0x7f {
				return false
			}
		}
	}
	return true
}

// writeStore writes a storage command ("add", "set") for it.
func writeStore(w *bufio.Writer, verb string, it *Item) {
	b := append(w.AvailableBuffer(), verb...)
	b = append(b, ' ')
	b = append(b, it.Key...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(it.Flags), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(it.Expiration), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(it.Value)), 10)
	b = append(b, "\r\n"...)
	w.Write(b)
	w.Write(it.Value)
	w.WriteString("\r\n")
}

func writeGets(w *bufio.Writer, keys []string) {
	w.WriteString("gets")
	for _, k := range keys {
		w.WriteByte(' ')
		w.WriteString(k)
	}
	w.WriteString("\r\n")
}

func writeDelete(w *bufio.Writer, key string) {
	w.WriteString("delete ")
	w.WriteString(key)
	w.WriteString("\r\n")
}

// errProtocol is an answer the pipeline did not expect: the connection is
// dropped.
var errProtocol = errors.New("memcached: unexpected answer")

// The one-line answers a pipeline reads, and what each means: nil (done),
// or the error of an outcome that is not the server's fault. Any other
// line is serverError's.
var (
	storedAnswers  = map[string]error{"STORED\r\n": nil, "NOT_STORED\r\n": memcache.ErrNotStored}
	deletedAnswers = map[string]error{"DELETED\r\n": nil, "NOT_FOUND\r\n": memcache.ErrCacheMiss}
	swappedAnswers = map[string]error{"STORED\r\n": nil, "EXISTS\r\n": memcache.ErrCASConflict, "NOT_FOUND\r\n": memcache.ErrCacheMiss}
)

// readStored reads the answer to a storage command: nil, ErrNotStored, or
// the server's error.
func readStored(r *bufio.Reader) (result, err error) { return readAnswer(r, storedAnswers) }

// readDeleted reads the answer to a delete: nil, ErrCacheMiss, or the
// server's error.
func readDeleted(r *bufio.Reader) (result, err error) { return readAnswer(r, deletedAnswers) }

// readSwapped reads the answer to a compare-and-swap: nil,
// ErrCASConflict (changed since it was read), ErrCacheMiss (gone), or the
// server's error.
func readSwapped(r *bufio.Reader) (result, err error) { return readAnswer(r, swappedAnswers) }

// readAnswer reads a one-line answer and looks it up in answers.
func readAnswer(r *bufio.Reader, answers map[string]error) (result, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if result, ok := answers[string(line)]; ok {
		return result, nil
	}
	return serverError(line)
}

// serverError is a command's SERVER_ERROR answer (the connection goes on),
// or errProtocol for anything else.
func serverError(line []byte) (result, err error) {
	if msg, ok := bytes.CutPrefix(line, []byte("SERVER_ERROR ")); ok {
		return errors.New("memcached: server error: " + string(bytes.TrimSpace(msg))), nil
	}
	return nil, errProtocol
}

// readValues reads the answer to "gets keys": the items found, under the
// keys asked for.
func readValues(r *bufio.Reader, keys []string) (map[string]*Item, error) {
	items := make(map[string]*Item, len(keys)+1)
	next := 0 // memcached answers in the order asked
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if string(line) == "END\r\n" {
			return items, nil
		}
		// VALUE <key> <flags> <bytes> <cas unique>
		var f [5][]byte
		if fields(line, f[:]) != 5 || string(f[0]) != "VALUE" {
			return nil, errProtocol
		}
		flags, err1 := strconv.ParseUint(string(f[2]), 10, 32)
		size, err2 := strconv.Atoi(string(f[3]))
		cas, err3 := strconv.ParseUint(string(f[4]), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || size < 0 {
			return nil, errProtocol
		}
		key, at := askedKey(keys, next, f[1])
		if at < 0 {
			return nil, errProtocol
		}
		next = at + 1
		v := make([]byte, size+2)
		if _, err := io.ReadFull(r, v); err != nil {
			return nil, err
		}
		if string(v[size:]) != "\r\n" {
			return nil, errProtocol
		}
		items[key] = &Item{Key: key, Value: v[:size:size], Flags: uint32(flags), CasID: cas}
	}
}

// fields splits an answer line at spaces into f, without its line end,
// and returns how many fields it has (len(f)+1 for more than f holds).
func fields(line []byte, f [][]byte) int {
	line = bytes.TrimRight(line, "\r\n")
	n := 0
	for len(line) > 0 {
		field, rest, _ := bytes.Cut(line, []byte(" "))
		if n == len(f) {
			return n + 1
		}
		f[n], n, line = field, n+1, rest
	}
	return n
}

// askedKey is the key of keys equal to b and its index (-1 if none), so
// that an item's key is the caller's string rather than a new one. The
// search starts at from, where the answer's order puts it.
func askedKey(keys []string, from int, b []byte) (string, int) {
	for i := range keys {
		if k := keys[(from+i)%len(keys)]; k == string(b) {
			return k, (from + i) % len(keys)
		}
	}
	return "", -1
}
