package lease

import (
	"context"
	"fmt"
	"net"
	"os"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/bradfitz/gomemcache/memcache"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"edgecache/deploy/localstack"
	"edgecache/proxy/store"
)

var mc *localstack.Memcached

func TestMain(m *testing.M) {
	if localstack.FuzzWorker() {
		os.Exit(m.Run())
	}
	var err error
	if mc, err = localstack.StartMemcached(context.Background(), 16); err != nil {
		fmt.Fprintln(os.Stderr, "memcached:", err)
		os.Exit(1)
	}
	code := m.Run()
	mc.Stop()
	os.Exit(code)
}

const (
	testDuration = 300 * time.Millisecond
	testTimeout  = 50 * time.Millisecond
	testSecret   = "s3cret"
)

// newStore is a store over a memcached of the test's own (each test has
// its own registry).
func newStore(t *testing.T) (*localstack.Memcached, *store.Store) {
	t.Helper()
	node, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	st, err := store.New(store.Config{Nodes: []string{node.Addr}, Timeout: 3 * time.Second, MaxIdleConns: 8, ProbeInterval: 50 * time.Millisecond},
		zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return node, st
}

// member is a Holder with its peer listener, advertised at addr (the
// listener itself, or a relay in front of it when relay is set).
type testMember struct {
	*Holder
	addr  string
	relay *localstack.Relay
}

func startMember(t *testing.T, st *store.Store, id string, relay bool) *testMember {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &testMember{addr: ln.Addr().String()}
	if relay {
		if m.relay, err = localstack.StartRelay(m.addr); err != nil {
			t.Fatal(err)
		}
		m.addr = m.relay.Addr()
		t.Cleanup(m.relay.Kill)
	}
	h, err := NewHolder(HolderConfig{ID: id, Advertise: m.addr, Duration: testDuration, Secret: testSecret}, st, zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	m.Holder = h
	srv := &fasthttp.Server{Handler: h.ServeInvalidate}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	h.Start()
	t.Cleanup(func() {
		select {
		case <-h.stop:
		default:
			h.Leave()
		}
	})
	return m
}

// waitHeld waits, round by round, until the member holds its lease.
func waitHeld(t *testing.T, h *Holder) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ch := h.Changed()
		if h.Held() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the member never held its lease")
		}
		<-ch
	}
}

func newNotifier(st *store.Store, secret string) *Notifier {
	return NewNotifier(NotifierConfig{Secret: secret, Duration: testDuration, Timeout: testTimeout}, st, zap.NewNop(), metrics.NewSet(), "test")
}

func TestRegistryRoundTrip(t *testing.T) {
	r := registry{incarnation: 42, removals: 3, members: []member{
		{id: "a1", addr: "10.0.0.1:8082", duration: time.Second},
		{id: "b2", addr: "[::1]:9", duration: 1500 * time.Millisecond, revoked: true},
	}}
	got, err := parseRegistry(r.bytes())
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, r)
	}
	for _, bad := range []string{"", "leases 2 0 0\n", "leases 2 5\n", "leases 1 5\na b 1 1000 L\n", "leases 2 5 0\na b 1000\n",
		"leases 2 5 0\na b x L\n", "leases 2 5 0\na b 0 L\n", "leases 2 5 0\na b 1000 X\n", "leases 2 5 x\n", "garbage"} {
		if _, err := parseRegistry([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := parseRegistry([]byte("leases 2 5 0\n")); err != nil {
		t.Errorf("empty registry: %v", err)
	}
}

// A notification reaches a holder and is acknowledged; an entry checked
// before it that names the group is no longer free, others still are.
func TestNotifiedGroupsAreNoLongerFree(t *testing.T) {
	_, st := newStore(t)
	a := startMember(t, st, "a", false)
	waitHeld(t, a.Holder)
	checked := a.Seq()
	moved, other := []uint32{a.Bucket("g:moved")}, []uint32{a.Bucket("g:other")}
	if moved[0] == other[0] {
		t.Skip("the two keys share a bucket")
	}
	if !a.Free(time.Now(), checked, moved) || !a.Free(time.Now(), checked, other) {
		t.Fatal("a held lease does not make a checked entry free")
	}
	n := newNotifier(st, testSecret)
	if err := n.Notify([]string{"g:moved"}); err != nil {
		t.Fatal(err)
	}
	if a.Free(time.Now(), checked, moved) {
		t.Error("STALE: an entry naming a notified group is still free after the acknowledgement")
	}
	if !a.Free(time.Now(), checked, other) && a.Held() {
		t.Error("an entry naming another group lost its freedom")
	}
	if got := n.acks.Get(); got != 1 {
		t.Errorf("acks %d, want 1", got)
	}
	// Checked again after the notification: free again.
	if !a.Free(time.Now(), a.Seq(), moved) && a.Held() {
		t.Error("an entry checked after the notification is not free")
	}
}

// A holder whose peer listener does not answer (frozen behind a relay)
// while it keeps renewing: the mover revokes it and waits its lease out.
// When Notify returns, nothing the holder checked before is free; once
// its listener answers again it rejoins, and still re-checks first.
func TestUnreachableHolderIsRevokedAndWaitedOut(t *testing.T) {
	_, st := newStore(t)
	a := startMember(t, st, "a", true)
	waitHeld(t, a.Holder)
	checked, buckets := a.Seq(), []uint32{a.Bucket("g:x")}
	a.relay.Pause()
	n := newNotifier(st, testSecret)
	start := time.Now()
	if err := n.Notify([]string{"g:x"}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if a.Free(time.Now(), checked, buckets) {
		t.Fatalf("STALE: Notify returned after %s while the unreachable holder still trusts an entry checked before it", took)
	}
	t.Logf("notify with one unreachable holder took %s (lease %s, timeout %s)", took, testDuration, testTimeout)
	if n.revocations.Get() == 0 {
		t.Error("the holder was not revoked")
	}
	a.relay.Resume()
	waitHeld(t, a.Holder)
	if a.Free(time.Now(), checked, buckets) {
		t.Error("STALE: after rejoining, an entry checked before the revocation is free without a new check")
	}
	if a.m.revok.Get() == 0 {
		t.Error("the holder never saw its revocation")
	}
}

// A lost registry: the mover cannot know the holders and waits a lease
// duration; a holder finds the new incarnation and re-checks.
func TestLostRegistryIsWaitedOutAndRechecked(t *testing.T) {
	node, st := newStore(t)
	a := startMember(t, st, "a", false)
	waitHeld(t, a.Holder)
	checked, buckets := a.Seq(), []uint32{a.Bucket("g:x")}
	resume := a.Pause() // it renews no more: only the wait protects it
	if err := memcache.New(node.Addr).Delete(RegistryKey); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(st, testSecret)
	if err := n.Notify([]string{"g:x"}); err != nil {
		t.Fatal(err)
	}
	if a.Free(time.Now(), checked, buckets) {
		t.Fatal("STALE: the mover returned while the holder of a lost registry still trusts its entries")
	}
	if n.lostWaits.Get() != 1 {
		t.Errorf("lost-registry waits %d, want 1", n.lostWaits.Get())
	}
	resume()
	waitHeld(t, a.Holder)
	if a.Free(time.Now(), checked, buckets) {
		t.Error("STALE: after the registry was re-created, an old check is trusted")
	}
}

// Without the secret a mover cannot tell the holders: it revokes them and
// waits, so a fleet half-way through turning leases on stays exact.
// A mover without the secret cannot notify, so it revokes and waits, and
// says so in its log (once: the next write is as slow, and says nothing).
func TestMoverWithoutTheSecretRevokesHolders(t *testing.T) {
	_, st := newStore(t)
	a := startMember(t, st, "a", false)
	waitHeld(t, a.Holder)
	checked, buckets := a.Seq(), []uint32{a.Bucket("g:x")}
	core, logs := observer.New(zap.WarnLevel)
	n := NewNotifier(NotifierConfig{Duration: testDuration, Timeout: testTimeout}, st, zap.New(core), metrics.NewSet(), "test")
	if err := n.Notify([]string{"g:x"}); err != nil {
		t.Fatal(err)
	}
	if a.Free(time.Now(), checked, buckets) {
		t.Fatal("STALE: a mover without the secret returned while a holder trusts its entries")
	}
	waitHeld(t, a.Holder)
	if err := n.Notify([]string{"g:x"}); err != nil {
		t.Fatal(err)
	}
	if w := logs.FilterMessageSnippet("no peer secret").Len(); w != 1 {
		t.Fatalf("%d warnings that this mover has no secret, want 1 over two writes", w)
	}
}

// With no registry at all and leases off, a write does not wait.
func TestNoRegistryNoSecretDoesNotWait(t *testing.T) {
	_, st := newStore(t)
	n := newNotifier(st, "")
	if err := n.Notify([]string{"g:x"}); err != nil {
		t.Fatal(err)
	}
	if n.lostWaits.Get() != 0 || n.expiries.Get() != 0 {
		t.Error("a mover waited with leases off and no registry")
	}
}

// A member that stopped renewing (crashed) is removed by the others after
// gcAfter of its durations; then writes no longer wait for it.
func TestDeadMemberIsCollected(t *testing.T) {
	_, st := newStore(t)
	a := startMember(t, st, "a", false)
	waitHeld(t, a.Holder)
	dead := startMember(t, st, "dead", false)
	waitHeld(t, dead.Holder)
	close(dead.stop) // it stops renewing, and stays listed
	<-dead.done
	deadline := time.Now().Add(30 * time.Second)
	for {
		ch := a.Changed()
		reg, _, state, err := readCopy(st, nil, 0)
		if err != nil || state != copyOK {
			t.Fatal(state, err)
		}
		if reg.find("dead") < 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead member was never collected")
		}
		<-ch
	}
	n := newNotifier(st, testSecret)
	if err := n.Notify([]string{"g:x"}); err != nil {
		t.Fatal(err)
	}
	if n.revocations.Get() != 0 || n.expiries.Get() != 0 {
		t.Error("a write waited for a collected member")
	}
}

// The peer listener refuses a wrong signature and a message for another
// member (two processes behind one address), takes many keys per message,
// and signs its acknowledgement of the message's nonce.
func TestServeInvalidateChecksSignatureAndMember(t *testing.T) {
	_, st := newStore(t)
	h, err := NewHolder(HolderConfig{ID: "x", Advertise: "127.0.0.1:1", Duration: testDuration, Secret: testSecret}, st, zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	body := "g:a\ng:b\n"
	serve := func(secret, member string) *fasthttp.Response {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.Set(hdrMember, member)
		ctx.Request.Header.Set(hdrNonce, "n1")
		ctx.Request.Header.Set(hdrSignature, sign(secret, []byte("invalidate"), []byte(member), []byte("n1"), []byte(body)))
		ctx.Request.SetBodyString(body)
		h.ServeInvalidate(&ctx)
		return &ctx.Response
	}
	if r := serve("wrong", "x"); r.StatusCode() != 401 || h.m.received.Get() != 0 {
		t.Fatalf("wrong secret: %d, %d keys recorded", r.StatusCode(), h.m.received.Get())
	}
	if r := serve(testSecret, "y"); r.StatusCode() != 421 || h.m.received.Get() != 0 {
		t.Fatalf("another member's message: %d, %d keys recorded", r.StatusCode(), h.m.received.Get())
	}
	r := serve(testSecret, "x")
	if r.StatusCode() != 200 || h.m.received.Get() != 2 {
		t.Fatalf("right secret: %d, %d keys recorded", r.StatusCode(), h.m.received.Get())
	}
	if !validSignature(r.Header.Peek(hdrAck), testSecret, []byte("ack"), []byte("x"), []byte("n1")) {
		t.Fatalf("acknowledgement %q is not signed for the nonce", r.Header.Peek(hdrAck))
	}
}

// readsOfCopies counts the whole reads of registry copies: what grows with
// the members (a version read costs a few bytes whatever the copy's size).
type readsOfCopies struct {
	*store.Store
	whole atomic.Int64
}

func (r *readsOfCopies) NodeGet(n int, key string) (*store.Item, error) {
	if key == RegistryKey {
		r.whole.Add(1)
	}
	return r.Store.NodeGet(n, key)
}

// A copy that did not change is not read again, by renewals or by movers:
// registry traffic grows with the members, not with their square. A copy
// that changed is read whole at once.
func TestUnchangedCopyIsNotReadAgain(t *testing.T) {
	_, st := newStore(t)
	counted := &readsOfCopies{Store: st}
	for i := range 5 { // joined before the count begins: the copy then stays as it is
		waitHeld(t, startMember(t, st, fmt.Sprint("other-", i), false).Holder)
	}
	h, err := NewHolder(HolderConfig{ID: "counted", Advertise: "127.0.0.1:1", Duration: testDuration, Secret: testSecret}, counted, zap.NewNop(), metrics.NewSet(), "test")
	if err != nil {
		t.Fatal(err)
	}
	h.round()
	h.round()
	before := counted.whole.Load()
	for range 10 {
		h.round()
	}
	if got := counted.whole.Load() - before; got != 0 {
		t.Fatalf("%d whole reads of an unchanged copy in 10 renewals, want 0", got)
	}
	n := NewNotifier(NotifierConfig{Secret: testSecret, Duration: testDuration, Timeout: testTimeout}, counted, zap.NewNop(), metrics.NewSet(), "test")
	n.readRegistry()
	before = counted.whole.Load()
	for range 10 {
		if _, _, state, err := n.readRegistry(); state != copyOK || err != nil {
			t.Fatalf("registry read: %v %v", state, err)
		}
	}
	if got := counted.whole.Load() - before; got != 0 {
		t.Fatalf("%d whole reads of an unchanged copy by 10 movers' reads, want 0", got)
	}
	// A member joins: the copy changes, and the next read sees it whole.
	waitHeld(t, startMember(t, st, "joiner", false).Holder)
	members, _, _, _ := n.readRegistry()
	found := false
	for _, m := range members {
		found = found || m.id == "joiner"
	}
	if !found {
		t.Fatal("a member that joined is missing from the copy as read after its join")
	}
}
