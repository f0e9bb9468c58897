package invalidator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"edgecache/deploy/localstack"
	"edgecache/proxy/membership"
)

// membershipDDL is the origin's migration 0004, statement by statement.
var membershipDDL = func() []string {
	b, err := os.ReadFile("../../origin/migrations/0004_memcached_membership.sql")
	if err != nil {
		panic(err)
	}
	var code strings.Builder
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			code.WriteString(line)
		}
	}
	var stmts []string
	for _, s := range strings.Split(code.String(), ";") {
		if s = strings.TrimSpace(s); s != "" {
			stmts = append(stmts, s)
		}
	}
	return stmts
}()

// newMembershipLog is a test database with the membership tables too.
func newMembershipLog(t testing.TB) *testLog {
	t.Helper()
	l := newTestLog(t)
	for _, ddl := range membershipDDL {
		if _, err := l.db.Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// fakeClock is a decider's time, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(d time.Duration) { c.advance(d) }

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startNodes starts n private memcached nodes; addrs are their addresses,
// sorted as the document sorts them.
func startNodes(t testing.TB, n int) (nodes map[string]*localstack.Memcached, addrs []string) {
	t.Helper()
	nodes = map[string]*localstack.Memcached{}
	for range n {
		mc, err := localstack.StartMemcached(context.Background(), 16)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(mc.Stop)
		nodes[mc.Addr] = mc
		addrs = append(addrs, mc.Addr)
	}
	slices.Sort(addrs)
	return nodes, addrs
}

// deciderUnderTest is an invalidator that does not run, over l, with a
// decider whose rounds the test calls on a session of its own.
type deciderUnderTest struct {
	inv   *Invalidator
	d     *decider
	s     *session
	clock *fakeClock
}

func newDeciderUnderTest(t testing.TB, l *testLog, cfg Config, c *fakeClock) *deciderUnderTest {
	t.Helper()
	inv, err := New(cfg, newRecorder(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	inv.clock = c
	s, err := openSession(context.Background(), inv.db, cfg.LockName, cfg.SessionTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return &deciderUnderTest{inv: inv, d: newDecider(inv), s: s, clock: c}
}

func membershipConfig(t testing.TB, l *testLog, seeds []string) Config {
	cfg := testConfig(t, l)
	cfg.Memcached = seeds
	cfg.MemcachedTimeout = 100 * time.Millisecond
	return cfg
}

func (du *deciderUnderTest) round(t *testing.T) {
	t.Helper()
	if err := du.d.round(du.s); err != nil {
		t.Fatal("round:", err)
	}
}

// generations is every generation in the database, newest first.
func generations(t *testing.T, l *testLog) []membership.Gen {
	t.Helper()
	gens, err := readGenerations(context.Background(), l.db, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return gens
}

// docOn is the document node holds.
func docOn(t *testing.T, node string) membership.Doc {
	t.Helper()
	it, err := memcache.New(node).Get(membership.Key)
	if err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	d, err := membership.Parse(it.Value)
	if err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	return d
}

// wantDocEverywhere checks that every node holds the document made of the
// database's generations.
func wantDocEverywhere(t *testing.T, l *testLog, view time.Duration, nodes []string) {
	t.Helper()
	want := membership.Doc{View: view, Gens: generations(t, l)}
	for _, n := range nodes {
		if got := docOn(t, n); !reflect.DeepEqual(got, want) {
			t.Errorf("%s holds %q, want %q", n, got.Bytes(), want.Bytes())
		}
	}
}

// wantNewest checks the newest generation's number and phase.
func wantNewest(t *testing.T, l *testLog, n uint64, phase string) membership.Gen {
	t.Helper()
	g := generations(t, l)[0]
	if g.N != n || g.Phase() != phase {
		t.Fatalf("newest generation %q (%s), want %d %s", g.Line(), g.Phase(), n, phase)
	}
	return g
}

func putKey(t *testing.T, node, key string) {
	t.Helper()
	if err := memcache.New(node).Set(&memcache.Item{Key: key, Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

func hasKey(t *testing.T, node, key string) bool {
	t.Helper()
	_, err := memcache.New(node).Get(key)
	if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatal(err)
	}
	return err == nil
}

// command calls the admin handler and decodes its JSON answer.
func command(t *testing.T, inv *Invalidator, method, path string) (int, membershipStatus, string) {
	t.Helper()
	w := httptest.NewRecorder()
	inv.Handler().ServeHTTP(w, httptest.NewRequest(method, path, nil))
	var st membershipStatus
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, w.Body)
		}
	}
	return w.Code, st, w.Body.String()
}

// The first round of the first decider publishes the seeds as generation
// 1 and writes the document to every node; rounds after it, with nothing
// asked, publish nothing.
func TestDeciderFirstRoundPublishesTheSeeds(t *testing.T) {
	_, addrs := startNodes(t, 2)
	l := newMembershipLog(t)
	cfg := membershipConfig(t, l, []string{addrs[1], addrs[0]})
	du := newDeciderUnderTest(t, l, cfg, &fakeClock{now: time.Unix(1000, 0)})

	du.round(t)
	gens := generations(t, l)
	if want := []membership.Gen{membership.Settled(1, addrs)}; !reflect.DeepEqual(gens, want) {
		t.Fatalf("generations %v, want %v", gens, want)
	}
	wantDocEverywhere(t, l, cfg.MemcachedView, addrs)

	du.clock.advance(10 * cfg.MemcachedView)
	du.round(t)
	if n := len(generations(t, l)); n != 1 {
		t.Fatalf("%d generations after a round with nothing to change, want 1", n)
	}
	_, metrics := get(t, &running{Invalidator: du.inv}, "/metrics")
	for _, line := range []string{
		"edgecache_invalidator_memcached_generation 1",
		"edgecache_invalidator_memcached_changes_total 1",
		`edgecache_invalidator_memcached_node_up{node="` + addrs[0] + `"} 1`,
	} {
		if !strings.Contains(metrics, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// A node added by an operator joins in three generations, one per view
// time: dual-write (the node flushed first), dual-read, settled; each
// written to every node.
func TestDeciderAddsANodeInThreeGenerations(t *testing.T) {
	_, addrs := startNodes(t, 3)
	a, b, c := addrs[0], addrs[1], addrs[2]
	l := newMembershipLog(t)
	cfg := membershipConfig(t, l, []string{a, b})
	du := newDeciderUnderTest(t, l, cfg, &fakeClock{now: time.Unix(1000, 0)})
	du.round(t)
	putKey(t, c, "left-over")

	code, st, body := command(t, du.inv, "POST", "/memcached/add?node="+c)
	if code != http.StatusOK || !slices.Equal(st.Desired, addrs) || st.Generation != 1 || st.Phase != "settled" {
		t.Fatalf("add: %d %s", code, body)
	}
	du.round(t)
	wantNewest(t, l, 1, "settled") // generation 1 is not a view old yet
	if !hasKey(t, c, "left-over") {
		t.Fatal("the joining node was flushed before its change began")
	}

	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	g := wantNewest(t, l, 2, "dual-write")
	if want := [][]string{{a, b}, {a, b, c}}; !reflect.DeepEqual(g.Write, want) {
		t.Errorf("write sets %v, want %v", g.Write, want)
	}
	if hasKey(t, c, "left-over") {
		t.Error("the joining node was not flushed")
	}
	wantDocEverywhere(t, l, cfg.MemcachedView, addrs)

	du.clock.advance(cfg.MemcachedView / 2)
	du.round(t)
	wantNewest(t, l, 2, "dual-write")
	du.clock.advance(cfg.MemcachedView / 2)
	du.round(t)
	wantNewest(t, l, 3, "dual-read")
	wantDocEverywhere(t, l, cfg.MemcachedView, addrs)

	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	wantNewest(t, l, 4, "settled")
	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	g = wantNewest(t, l, 4, "settled")
	if !slices.Equal(g.Read, addrs) {
		t.Errorf("settled on %v, want %v", g.Read, addrs)
	}
	wantDocEverywhere(t, l, cfg.MemcachedView, addrs)
	if code, st, body := command(t, du.inv, "GET", "/memcached"); code != http.StatusOK || st.Generation != 4 ||
		st.Phase != "settled" || !slices.Equal(st.Read, addrs) || len(st.Nodes) != 3 {
		t.Errorf("status: %d %s", code, body)
	}

	// A node that does not answer is not taken in.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if code, _, body := command(t, du.inv, "POST", "/memcached/add?node="+dead); code != http.StatusOK {
		t.Fatalf("add: %d %s", code, body)
	}
	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	wantNewest(t, l, 4, "settled")
}

// A node that stops answering is taken out in three generations once it
// has failed for EjectAfter; once it answers again it is flushed and taken
// back in.
func TestDeciderEjectsAStoppedNodeAndTakesItBack(t *testing.T) {
	nodes, addrs := startNodes(t, 3)
	a, b, c := addrs[0], addrs[1], addrs[2]
	l := newMembershipLog(t)
	cfg := membershipConfig(t, l, addrs)
	du := newDeciderUnderTest(t, l, cfg, &fakeClock{now: time.Unix(1000, 0)})
	du.round(t)

	if err := nodes[c].Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			nodes[c].Resume()
		}
	}()
	du.round(t)
	du.clock.advance(cfg.MemcachedEjectAfter - time.Millisecond)
	du.round(t)
	wantNewest(t, l, 1, "settled")
	_, st, _ := command(t, du.inv, "GET", "/memcached")
	if i := slices.IndexFunc(st.Nodes, func(h nodeHealth) bool { return h.Node == c }); i < 0 || st.Nodes[i].Up ||
		st.Nodes[i].FailingForSeconds != (cfg.MemcachedEjectAfter-time.Millisecond).Seconds() {
		t.Errorf("status of the stopped node: %+v", st.Nodes)
	}

	du.clock.advance(time.Millisecond)
	du.round(t)
	g := wantNewest(t, l, 2, "dual-write")
	if want := [][]string{{a, b, c}, {a, b}}; !reflect.DeepEqual(g.Write, want) {
		t.Errorf("write sets %v, want %v", g.Write, want)
	}
	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	wantNewest(t, l, 3, "dual-read")
	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	g = wantNewest(t, l, 4, "settled")
	if !slices.Equal(g.Read, []string{a, b}) {
		t.Fatalf("settled on %v, want %v", g.Read, []string{a, b})
	}
	wantDocEverywhere(t, l, cfg.MemcachedView, []string{a, b})
	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	wantNewest(t, l, 4, "settled") // not taken back while it does not answer
	_, metrics := get(t, &running{Invalidator: du.inv}, "/metrics")
	for _, line := range []string{
		"edgecache_invalidator_memcached_ejections_total 1",
		`edgecache_invalidator_memcached_node_up{node="` + c + `"} 0`,
	} {
		if !strings.Contains(metrics, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}

	if err := nodes[c].Resume(); err != nil {
		t.Fatal(err)
	}
	paused = false
	putKey(t, c, "left-over")
	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	g = wantNewest(t, l, 5, "dual-write")
	if want := [][]string{{a, b}, {a, b, c}}; !reflect.DeepEqual(g.Write, want) {
		t.Errorf("write sets %v, want %v", g.Write, want)
	}
	if hasKey(t, c, "left-over") {
		t.Error("the node taken back in was not flushed")
	}
	for n := uint64(6); n <= 7; n++ {
		du.clock.advance(cfg.MemcachedView)
		du.round(t)
	}
	if g = wantNewest(t, l, 7, "settled"); !slices.Equal(g.Read, addrs) {
		t.Errorf("settled on %v, want %v", g.Read, addrs)
	}
	wantDocEverywhere(t, l, cfg.MemcachedView, addrs)
}

// Commands that would empty the membership, name a bad address, add a
// node present or remove one absent are refused with a JSON error, and
// change nothing.
func TestMemcachedCommandsRefuseBadInput(t *testing.T) {
	l := newMembershipLog(t)
	cfg := membershipConfig(t, l, []string{"127.0.0.1:1"})
	inv, err := New(cfg, newRecorder(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	for _, tc := range []struct {
		path string
		code int
		err  string
	}{
		{"/memcached/remove?node=127.0.0.1:1", http.StatusConflict, "last_node"},
		{"/memcached/add?node=127.0.0.1:1", http.StatusConflict, "present"},
		{"/memcached/remove?node=127.0.0.1:2", http.StatusConflict, "absent"},
		{"/memcached/replace?old=127.0.0.1:1&new=127.0.0.1:1", http.StatusConflict, "present"},
		{"/memcached/add?node=no-port", http.StatusBadRequest, "bad_node"},
		{"/memcached/add?node=127.0.0.1:0", http.StatusBadRequest, "bad_node"},
		{"/memcached/add?node=a,b:1", http.StatusBadRequest, "bad_node"},
		{"/memcached/add?node=a%20b:1", http.StatusBadRequest, "bad_node"},
		{"/memcached/add", http.StatusBadRequest, "bad_node"},
		{"/memcached/replace?old=127.0.0.1:1", http.StatusBadRequest, "bad_node"},
	} {
		code, _, body := command(t, inv, "POST", tc.path)
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(body), &e); code != tc.code || err != nil || e.Error.Code != tc.err || e.Error.Message == "" {
			t.Errorf("%s: %d %q, want %d and a JSON error %s", tc.path, code, body, tc.code, tc.err)
		}
	}
	if code, st, body := command(t, inv, "GET", "/memcached"); code != http.StatusOK || !slices.Equal(st.Desired, []string{"127.0.0.1:1"}) ||
		st.Phase != "none" || st.Leading || st.Nodes == nil {
		t.Errorf("after refused commands: %d %s", code, body)
	}
	code, st, body := command(t, inv, "POST", "/memcached/replace?old=127.0.0.1:1&new=127.0.0.1:2")
	if code != http.StatusOK || !slices.Equal(st.Desired, []string{"127.0.0.1:2"}) {
		t.Errorf("replace: %d %s", code, body)
	}
}

// holdDesired makes the next read of memcached_desired wait until release:
// a decider that reads the generations and then waits there publishes from
// what it read, after another may have published.
func holdDesired(t *testing.T, l *testLog) (waiting func() bool, release func()) {
	t.Helper()
	conn, err := l.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "LOCK TABLES memcached_desired WRITE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			conn.ExecContext(context.Background(), "UNLOCK TABLES")
			conn.Close()
		})
	}
	t.Cleanup(release)
	waiting = func() bool {
		var n int
		err := l.db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE DB = ? AND STATE = 'Waiting for table metadata lock' AND INFO LIKE 'SELECT nodes FROM memcached_desired%'`, l.name).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	return waiting, release
}

// pollUntil checks cond every few milliseconds: for a state only the
// database shows, which sends no signal.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// Of two deciders that read the same newest generation, the one that
// publishes second finds its generation taken, and stops.
func TestSecondDeciderStops(t *testing.T) {
	_, addrs := startNodes(t, 2)
	l := newMembershipLog(t)
	cfg := membershipConfig(t, l, addrs[:1])
	c := &fakeClock{now: time.Unix(1000, 0)}
	first := newDeciderUnderTest(t, l, cfg, c)
	second := newDeciderUnderTest(t, l, cfg, c)
	first.round(t)
	second.round(t)
	if code, _, body := command(t, first.inv, "POST", "/memcached/add?node="+addrs[1]); code != http.StatusOK {
		t.Fatalf("add: %d %s", code, body)
	}
	c.advance(cfg.MemcachedView)

	waiting, release := holdDesired(t, l)
	done := make(chan error, 1)
	go func() { done <- second.d.round(second.s) }()
	pollUntil(t, "the second decider waits to read the desired nodes", waiting)
	next, _ := membership.Next(generations(t, l)[0], addrs)
	if err := first.d.publish(first.s, next, c.Now()); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; !errors.Is(err, errAnotherDecider) {
		t.Fatalf("the second decider's round: %v, want errAnotherDecider", err)
	}
	if gens := generations(t, l); len(gens) != 2 || !reflect.DeepEqual(gens[0], next) {
		t.Errorf("generations %v, want the first decider's %v on top", gens, next)
	}
}

// A leader whose decider finds its generation taken steps down, and leads
// again from the database as it is.
func TestLeaderStepsDownOnAnotherDecider(t *testing.T) {
	_, addrs := startNodes(t, 1)
	l := newMembershipLog(t)
	cfg := membershipConfig(t, l, addrs)
	waiting, release := holdDesired(t, l)
	logs := newWatchedLogs()
	inv := startInvalidator(t, cfg, newRecorder(), logs.logger)
	pollUntil(t, "the leader's decider waits to read the desired nodes", waiting)
	if _, err := l.db.Exec("INSERT INTO memcached_generations (n, line) VALUES (1, ?)", membership.Settled(1, addrs).Line()); err != nil {
		t.Fatal(err)
	}
	release()
	waitUntil(t, "it steps down", func() bool {
		return logs.FilterMessage("stepped down").FilterFieldKey("error").Len() > 0
	}, logs)
	if e := logs.FilterMessage("stepped down").All()[0].ContextMap()["error"]; !strings.Contains(e.(string), "another decider") {
		t.Errorf("stepped down because %v", e)
	}
	waitUntil(t, "it leads again", inv.Leading, inv)
	pollUntil(t, "it writes the document", func() bool {
		_, err := memcache.New(addrs[0]).Get(membership.Key)
		return err == nil
	})
	wantDocEverywhere(t, l, cfg.MemcachedView, addrs)
	pollUntil(t, "the leader's status shows its probe of the node", func() bool {
		code, st, _ := command(t, inv.Invalidator, "GET", "/memcached")
		return code == http.StatusOK && st.Leading && st.Generation == 1 &&
			reflect.DeepEqual(st.Nodes, []nodeHealth{{Node: addrs[0], Up: true, Member: true}})
	})
}

// BenchmarkDeciderRound is one round with nothing to change over three
// nodes: two reads on the session, a version and a set per node.
func BenchmarkDeciderRound(b *testing.B) {
	_, addrs := startNodes(b, 3)
	l := newMembershipLog(b)
	du := newDeciderUnderTest(b, l, membershipConfig(b, l, addrs), &fakeClock{now: time.Unix(1000, 0)})
	for b.Loop() {
		if err := du.d.round(du.s); err != nil {
			b.Fatal(err)
		}
	}
}

// configEndpoint stands in for an ElastiCache configuration endpoint (the
// one stand-in: there is no ElastiCache here): it answers "config get
// cluster" with the nodes it is given at the time.
func configEndpoint(t *testing.T, nodes func() []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for version := 1; ; version++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			c.Read(buf)
			var list []string
			for _, n := range nodes() {
				host, port, _ := net.SplitHostPort(n)
				list = append(list, host+"|"+host+"|"+port)
			}
			data := fmt.Sprintf("%d\n%s\n", version, strings.Join(list, " "))
			fmt.Fprintf(c, "CONFIG cluster 0 %d\r\n%s\r\nEND\r\n", len(data), data)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// With discovery on, the cluster's node list is the desired membership,
// the operators' commands are refused, and a configuration endpoint that
// stops answering changes nothing.
func TestDeciderFollowsDiscovery(t *testing.T) {
	_, addrs := startNodes(t, 2)
	a, b := addrs[0], addrs[1]
	var mu sync.Mutex
	cluster := []string{a}
	endpoint := configEndpoint(t, func() []string { mu.Lock(); defer mu.Unlock(); return cluster })
	l := newMembershipLog(t)
	cfg := membershipConfig(t, l, []string{a})
	cfg.MemcachedDiscovery = endpoint
	du := newDeciderUnderTest(t, l, cfg, &fakeClock{now: time.Unix(1000, 0)})
	du.round(t)
	wantNewest(t, l, 1, "settled")
	if code, _, body := command(t, du.inv, "POST", "/memcached/add?node="+b); code != http.StatusConflict || !strings.Contains(body, "discovery") {
		t.Fatalf("a command with discovery on: %d %s", code, body)
	}
	mu.Lock()
	cluster = []string{a, b} // the cluster grew
	mu.Unlock()
	for range 3 {
		du.clock.advance(cfg.MemcachedView)
		du.round(t)
	}
	if g := wantNewest(t, l, 4, "settled"); !slices.Equal(g.Read, []string{a, b}) {
		t.Fatalf("settled on %v, want the discovered %v", g.Read, []string{a, b})
	}
	du.inv.cfg.MemcachedDiscovery = "127.0.0.1:1" // the endpoint no longer answers
	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	if g := wantNewest(t, l, 4, "settled"); !slices.Equal(g.Read, []string{a, b}) {
		t.Fatalf("an endpoint that does not answer changed the membership to %v", g.Read)
	}
}

// The membership tables emptied while the nodes keep a document: the
// decider goes on from the document's generation (followers never adopt a
// lower one) and changes to the seeds from there, in three generations.
func TestDeciderStartsFromADocumentTheTablesForgot(t *testing.T) {
	_, addrs := startNodes(t, 2)
	a, b := addrs[0], addrs[1]
	old := membership.Doc{View: 2 * time.Second, Gens: []membership.Gen{membership.Settled(7, []string{a, b})}}
	putDoc(t, a, old)
	l := newMembershipLog(t)
	cfg := membershipConfig(t, l, []string{a})
	du := newDeciderUnderTest(t, l, cfg, &fakeClock{now: time.Unix(1000, 0)})
	du.round(t)
	if g := wantNewest(t, l, 7, "settled"); !slices.Equal(g.Read, []string{a, b}) {
		t.Fatalf("started from %v, want the document's %v", g.Read, []string{a, b})
	}
	du.clock.advance(cfg.MemcachedView)
	du.round(t)
	wantNewest(t, l, 8, "dual-write")
}

func putDoc(t *testing.T, node string, d membership.Doc) {
	t.Helper()
	if err := memcache.New(node).Set(&memcache.Item{Key: membership.Key, Value: d.Bytes()}); err != nil {
		t.Fatal(err)
	}
}
