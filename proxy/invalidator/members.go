package invalidator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"edgecache/proxy/discovery"
	"edgecache/proxy/membership"
)

// The memcached membership decider (doc.go, "Memcached membership"): while
// it leads, the invalidator is the one writer of membership generations.
// The database is the truth (memcached_generations, memcached_desired:
// origin migration 0004); the document in memcached is its copy for the
// followers (package membership).

// errAnotherDecider is why a decider stops: a generation it was about to
// publish was there already, so another instance publishes too.
var errAnotherDecider = errors.New("memcached membership: another decider published the same generation")

// decider is the leader's membership round, a new one each term of
// leadership. Its clients are its own, one per node: it must reach nodes
// the store does not use yet (joining) or no longer uses (ejected).
type decider struct {
	inv           *Invalidator
	clients       map[string]*memcache.Client
	published     time.Time            // the newest generation's publication, or the start of this term
	failing       map[string]time.Time // node: since when it fails its probe
	upGauges      map[string]string    // node: its node_up gauge's name, registered
	roundsFailing bool                 // logged once per change
	discovered    []string             // ElastiCache's node list, as last read
}

func newDecider(inv *Invalidator) *decider {
	return &decider{inv: inv, clients: map[string]*memcache.Client{}, published: inv.clock.Now(),
		failing: map[string]time.Time{}, upGauges: map[string]string{}}
}

// run does a round every MemcachedCheckInterval until ctx is done, or until
// another decider is found (then it returns errAnotherDecider). A round
// that fails (the database refused or is gone) is logged and the next one
// tries again; a lost session ends the term through the apply loop and
// the lock check.
func (d *decider) run(ctx context.Context, s *session) error {
	defer d.stop()
	for {
		err := d.round(s)
		if errors.Is(err, errAnotherDecider) {
			return err
		}
		d.report(err)
		if !sleep(ctx, d.inv.cfg.MemcachedCheckInterval) {
			return ctx.Err()
		}
	}
}

func (d *decider) report(err error) {
	switch {
	case err != nil && !d.roundsFailing:
		d.roundsFailing = true
		d.inv.log.Warn("memcached membership: round failing; retrying every check interval", zap.Error(err))
	case err == nil && d.roundsFailing:
		d.roundsFailing = false
		d.inv.log.Info("memcached membership: rounds succeed again")
	}
}

// stop forgets this term's health: a standby reports none.
func (d *decider) stop() {
	for _, c := range d.clients {
		c.Close()
	}
	d.recordHealth(nil, membership.Gen{}, nil, time.Time{})
	d.inv.m.memcachedGeneration.Set(0)
}

// round is one check: read the generations and the desired nodes, probe
// every node, take the next step of a change when the newest generation
// has been published for the view time, and write the document to every
// node that answers.
func (d *decider) round(s *session) error {
	cfg := d.inv.cfg
	gens, err := s.generations(membership.Keep)
	if err != nil {
		return err
	}
	desired, err := d.desired(s)
	if err != nil {
		return err
	}
	doc := membership.Doc{View: cfg.MemcachedView, Gens: gens}
	now := d.inv.clock.Now()
	if len(gens) == 0 {
		// The first decider ever: the seeds are what every follower uses
		// in static mode, so they are the first generation as they are.
		// Unless the nodes hold a document already (the tables were
		// emptied, or the database restored from before them): followers
		// are at its generation and would never adopt a lower one, so it
		// is where this decider starts, and it changes from there.
		first := membership.Settled(1, cfg.Memcached)
		if found, ok := d.found(cfg.Memcached); ok {
			first = found
		}
		if err := d.publish(s, first, now); err != nil {
			return err
		}
		doc = doc.With(first)
	}
	cur := doc.Current()
	up := d.probe(union(desired, cur.Nodes()), now)
	writeTo := cur.Nodes()
	if now.Sub(d.published) >= cfg.MemcachedView {
		target, ejected := d.target(desired, cur, up, now)
		if next, ok := membership.Next(cur, target); ok {
			stepped, err := d.step(s, cur, next, ejected, now)
			if err != nil {
				return err
			}
			if stepped {
				doc = doc.With(next)
				writeTo = union(writeTo, next.Nodes())
			}
		}
	}
	d.write(doc, writeTo, up)
	d.inv.m.memcachedGeneration.Set(float64(doc.Current().N))
	d.recordHealth(union(desired, doc.Current().Nodes()), doc.Current(), up, now)
	return nil
}

// desired is the nodes memcached should have: ElastiCache's node list
// when discovery is on (the last one read while the configuration
// endpoint does not answer: no answer is not an empty cluster), else
// memcached_desired's, else the seeds.
func (d *decider) desired(s *session) ([]string, error) {
	cfg := d.inv.cfg
	if cfg.MemcachedDiscovery == "" {
		return s.desired(cfg.Memcached)
	}
	_, nodes, err := discovery.Nodes(context.Background(), cfg.MemcachedDiscovery, cfg.MemcachedTimeout)
	switch {
	case err == nil && len(nodes) > 0:
		d.discovered = nodes
	case d.discovered == nil:
		d.inv.log.Warn("memcached discovery failed: the seeds stand in", zap.String("endpoint", cfg.MemcachedDiscovery), zap.Error(err))
		return cfg.Memcached, nil
	default:
		d.inv.log.Warn("memcached discovery failed: the last node list stands", zap.String("endpoint", cfg.MemcachedDiscovery), zap.Error(err))
	}
	return d.discovered, nil
}

// target is where the read set should be: the desired nodes, without those
// failing for EjectAfter (ejected) and without nodes not yet members that
// do not answer now. Never empty: with nothing left it is cur's read set.
func (d *decider) target(desired []string, cur membership.Gen, up map[string]bool, now time.Time) (target, ejected []string) {
	members := cur.Nodes()
	for _, n := range desired {
		switch {
		case up[n]:
			target = append(target, n)
		case now.Sub(d.failing[n]) >= d.inv.cfg.MemcachedEjectAfter:
			ejected = append(ejected, n)
		case slices.Contains(members, n):
			target = append(target, n) // failing, not for long enough yet
		}
	}
	if len(target) == 0 {
		return cur.Read, ejected
	}
	return target, ejected
}

// step publishes next: it flushes the nodes joining (whatever they hold was
// written by no generation that reads them), then records next. A joining
// node that cannot be flushed holds the step back (stepped false, no
// error): the next round tries again.
func (d *decider) step(s *session, cur, next membership.Gen, ejected []string, now time.Time) (stepped bool, err error) {
	for _, n := range next.Nodes() {
		if slices.Contains(cur.Nodes(), n) {
			continue
		}
		if err := d.client(n).FlushAll(); err != nil {
			d.inv.log.Warn("memcached membership: cannot flush a joining node; not stepping", zap.String("node", n), zap.Error(err))
			d.drop(n)
			return false, nil
		}
	}
	if err := d.publish(s, next, now); err != nil {
		return false, err
	}
	if cur.Phase() == "settled" {
		for _, n := range ejected {
			if slices.Contains(cur.Read, n) {
				d.inv.m.memcachedEjections.Inc()
				d.inv.log.Warn("memcached membership: ejecting a node that has failed too long", zap.String("node", n),
					zap.Duration("failing_for", now.Sub(d.failing[n])))
			}
		}
	}
	return true, nil
}

// publish records g in the database; a duplicate is another decider.
func (d *decider) publish(s *session, g membership.Gen, now time.Time) error {
	if err := s.insertGeneration(g); err != nil {
		if isDuplicate(err) {
			return fmt.Errorf("%w (generation %d)", errAnotherDecider, g.N)
		}
		return err
	}
	d.published = now
	d.inv.m.memcachedChanges.Inc()
	d.inv.log.Info("memcached membership: generation published", zap.Uint64("generation", g.N),
		zap.String("phase", g.Phase()), zap.Strings("read", g.Read), zap.String("line", g.Line()))
	return nil
}

// found is the newest generation a document on nodes shows.
func (d *decider) found(nodes []string) (membership.Gen, bool) {
	var newest membership.Gen
	for _, n := range nodes {
		it, err := d.client(n).Get(membership.Key)
		if err != nil {
			continue
		}
		if doc, err := membership.Parse(it.Value); err == nil && doc.Current().N > newest.N {
			newest = doc.Current()
		}
	}
	return newest, newest.N > 0
}

// probe asks every node for its version, at once, and records since when
// each one fails.
func (d *decider) probe(nodes []string, now time.Time) map[string]bool {
	up := make(map[string]bool, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nodes {
		c := d.client(n)
		wg.Go(func() {
			err := c.Ping()
			mu.Lock()
			up[n] = err == nil
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, n := range nodes {
		if up[n] {
			delete(d.failing, n)
			continue
		}
		if _, known := d.failing[n]; !known {
			d.failing[n] = now
		}
		d.drop(n) // a new connection, and the name resolved again, next time
	}
	for n := range d.failing {
		if !slices.Contains(nodes, n) {
			delete(d.failing, n)
		}
	}
	for n := range d.clients {
		if !slices.Contains(nodes, n) {
			d.drop(n)
		}
	}
	return up
}

// write sets the document on every node of nodes that answered.
func (d *decider) write(doc membership.Doc, nodes []string, up map[string]bool) {
	item := &memcache.Item{Key: membership.Key, Value: doc.Bytes()}
	for _, n := range nodes {
		if !up[n] {
			continue
		}
		if err := d.client(n).Set(item); err != nil {
			d.inv.log.Warn("memcached membership: cannot write the document", zap.String("node", n), zap.Error(err))
		}
	}
}

// recordHealth is what GET /memcached shows of this round, and the
// node_up gauges: one per node probed, gone with the node.
func (d *decider) recordHealth(nodes []string, cur membership.Gen, up map[string]bool, now time.Time) {
	h := make([]nodeHealth, 0, len(nodes))
	for _, n := range nodes {
		nh := nodeHealth{Node: n, Up: up[n], Member: slices.Contains(cur.Nodes(), n)}
		if since, ok := d.failing[n]; ok {
			nh.FailingForSeconds = now.Sub(since).Seconds()
		}
		h = append(h, nh)
		name, ok := d.upGauges[n]
		if !ok {
			name = fmt.Sprintf(`edgecache_invalidator_memcached_node_up{node=%q}`, n)
			d.upGauges[n] = name
		}
		g := d.inv.m.set.GetOrCreateGauge(name, nil)
		if nh.Up {
			g.Set(1)
		} else {
			g.Set(0)
		}
	}
	for n, name := range d.upGauges {
		if !slices.Contains(nodes, n) {
			d.inv.m.set.UnregisterMetric(name)
			delete(d.upGauges, n)
		}
	}
	d.inv.setMemcachedHealth(h)
}

// client is the node's own client, made on first use. A name that does
// not resolve gives a client with no server, which fails every call.
func (d *decider) client(node string) *memcache.Client {
	if c, ok := d.clients[node]; ok {
		return c
	}
	var servers memcache.ServerList
	if err := servers.SetServers(node); err != nil {
		d.inv.log.Debug("memcached membership: node address does not resolve", zap.String("node", node), zap.Error(err))
	}
	c := memcache.NewFromSelector(&servers)
	c.Timeout = d.inv.cfg.MemcachedTimeout
	c.MaxIdleConns = 2
	d.clients[node] = c
	return c
}

func (d *decider) drop(node string) {
	if c, ok := d.clients[node]; ok {
		c.Close()
		delete(d.clients, node)
	}
}

// union is the nodes of a and b, sorted, each once.
func union(a, b []string) []string {
	u := slices.Concat(a, b)
	slices.Sort(u)
	return slices.Compact(u)
}

// nodeHealth is one node as the leader's last round saw it.
type nodeHealth struct {
	Node              string  `json:"node"`
	Up                bool    `json:"up"`
	FailingForSeconds float64 `json:"failing_for_seconds"`
	Member            bool    `json:"member"` // in a set of the newest generation
}

// setMemcachedHealth records the leader's last view of the nodes (nil: not
// leading).
func (inv *Invalidator) setMemcachedHealth(h []nodeHealth) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.memcachedHealth = h
}

// querier is a pinned connection, the pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// readGenerations is the newest n generations, newest first.
func readGenerations(ctx context.Context, q querier, n int) ([]membership.Gen, error) {
	rows, err := q.QueryContext(ctx, "SELECT n, line FROM memcached_generations ORDER BY n DESC LIMIT ?", n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var gens []membership.Gen
	for rows.Next() {
		var n uint64
		var line string
		if err := rows.Scan(&n, &line); err != nil {
			return nil, err
		}
		g, err := membership.ParseGen(line)
		if err != nil {
			return nil, fmt.Errorf("memcached_generations row %d: %w", n, err)
		}
		if g.N != n {
			return nil, fmt.Errorf("memcached_generations row %d holds generation %d", n, g.N)
		}
		gens = append(gens, g)
	}
	return gens, rows.Err()
}

// readDesired is memcached_desired's nodes, or the seeds when it has no
// row.
func readDesired(ctx context.Context, q querier, seeds []string, forUpdate bool) ([]string, error) {
	query := "SELECT nodes FROM memcached_desired WHERE id = 1"
	if forUpdate {
		query += " FOR UPDATE"
	}
	var list string
	switch err := q.QueryRowContext(ctx, query).Scan(&list); {
	case errors.Is(err, sql.ErrNoRows):
		return union(seeds, nil), nil
	case err != nil:
		return nil, err
	}
	nodes := strings.Split(list, ",")
	for _, n := range nodes {
		if err := checkNode(n); err != nil {
			return nil, fmt.Errorf("memcached_desired: %w", err)
		}
	}
	return union(nodes, nil), nil
}

func (s *session) generations(n int) ([]membership.Gen, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return readGenerations(ctx, s.conn, n)
}

func (s *session) desired(seeds []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return readDesired(ctx, s.conn, seeds, false)
}

func (s *session) insertGeneration(g membership.Gen) error {
	return s.exec("INSERT INTO memcached_generations (n, line) VALUES (?, ?)", g.N, g.Line())
}

// erDupEntry is MySQL's "Duplicate entry for key".
const erDupEntry = 1062

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == erDupEntry
}

// checkNode says whether addr can be a member: host:port with a port
// number, and nothing the document uses as a separator.
func checkNode(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || host == "" {
		return fmt.Errorf("want a host and a port 1 to 65535, got %q", addr)
	}
	if strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r > '~' || strings.ContainsRune(`,|"\`, r) }) {
		return fmt.Errorf("node address %q holds a space, a comma, a bar, a quote or a non-ASCII character", addr)
	}
	return nil
}
