package fleet

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load is drill traffic through HAProxy with a read-after-write check: a
// set of posts (one per user), writers that edit them and remember each
// acknowledged version, and readers that read the post and its author's
// list and count a read as stale when it shows a version older than one
// acknowledged before the read was sent.
//
// An acknowledgement with "Edgecache-Invalidation: pending" promises the
// version only after the durable invalidator's bound: such versions count
// from PendingBound after their acknowledgement.
type Load struct {
	front  string
	client *http.Client
	posts  []*loadPost

	mu      sync.Mutex
	stats   LoadStats
	slow    time.Duration
	start   time.Time    // the timeline's origin (timeline.go)
	seconds []loadSecond // the timeline
	change  *memberChange
}

// PendingBound is how long after a "pending" acknowledgement a read may
// still show the older version: proxy/PROTOCOL.md's bound with the
// defaults, INVALIDATOR_POLL_INTERVAL + INVALIDATOR_PEER_TIMEOUT +
// INVALIDATOR_LEASE_DURATION. The protocol counts it from the later of the
// answer and the moment memcached was whole again; the drills count from
// the answer, which is stricter.
const PendingBound = 1210 * time.Millisecond

type loadPost struct {
	ackLog
	id, user int64
	token    string
	ackedAt  map[int64]time.Time // when each version was acknowledged, for the stale examples (under mu)
	// Under mu, to tell refetches that no write explains (timeline.go):
	inFlight  int         // writes sent, not answered
	lastWrite time.Time   // when the last one was answered
	keys      [2]keyState // the post, its author's list
}

// ackLog is one post's acknowledged writes: the highest version answered
// without "pending", and the "pending" ones with when they were answered.
type ackLog struct {
	acked   atomic.Int64
	mu      sync.Mutex
	pending []pendingAck
}

type pendingAck struct {
	version int64
	at      time.Time
}

// record notes version v acknowledged now, "pending" or not.
func (a *ackLog) record(v int64, pending bool) {
	if pending {
		a.mu.Lock()
		a.pending = append(a.pending, pendingAck{v, time.Now()})
		a.mu.Unlock()
		return
	}
	for {
		cur := a.acked.Load()
		if v <= cur || a.acked.CompareAndSwap(cur, v) {
			return
		}
	}
}

// want is the oldest version a read sent at now may show, where a
// "pending" acknowledgement counts once bound has passed since it, and
// whether it is such a one.
func (a *ackLog) want(now time.Time, bound time.Duration) (v int64, fromPending bool) {
	v = a.acked.Load()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.pending {
		if p.at.Add(bound).Before(now) && p.version > v {
			v, fromPending = p.version, true
		}
	}
	return v, fromPending
}

// LoadStats is what a run of Load saw.
type LoadStats struct {
	Reads, Writes  int            // requests sent
	Acked, Pending int            // writes answered 200, of them with "pending"
	Stale          int            // reads older than an acknowledged write
	Lost           int            // acknowledged versions the primary does not have (CheckLost)
	Slow           int            // requests that took over 2 s
	Errors         map[string]int // by status code, or "transport"
	StaleExamples  []string
	// PendingLatest is the latest a read still showed a version older than
	// a "pending" acknowledgement, after that acknowledgement (within
	// PendingBound, or it is stale).
	PendingLatest  time.Duration
	MaxLatency     time.Duration
	WriteLatencies []time.Duration // of writes answered 200
}

// NewLoad creates n users with one post each through the front.
func NewLoad(ctx context.Context, front string, n int) (*Load, error) {
	l := &Load{front: front, client: &http.Client{Timeout: 20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, slow: 2 * time.Second}
	l.stats.Errors = map[string]int{}
	stamp := time.Now().UnixNano()
	for i := range n {
		var u struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		}
		body := fmt.Sprintf(`{"name":"drill %d","email":"drill-%d-%d@example.com"}`, i, stamp, i)
		if err := l.call(ctx, "POST", "/v1/users", "", body, http.StatusCreated, &u); err != nil {
			return nil, err
		}
		var p struct {
			ID      int64 `json:"id"`
			Version int64 `json:"version"`
		}
		if err := l.call(ctx, "POST", fmt.Sprintf("/v1/users/%d/posts", u.ID), u.Token, `{"body":"drill post"}`, http.StatusCreated, &p); err != nil {
			return nil, err
		}
		lp := &loadPost{id: p.ID, user: u.ID, token: u.Token, ackedAt: map[int64]time.Time{}}
		lp.acked.Store(p.Version)
		l.posts = append(l.posts, lp)
	}
	l.start = time.Now()
	return l, nil
}

func (l *Load) call(ctx context.Context, method, path, token, body string, want int, v any) error {
	req, _ := http.NewRequestWithContext(ctx, method, l.front+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// Run sends reads and writes at the given rates (open loop: a request
// that hangs does not delay the next) until ctx ends, then waits for the
// requests in flight.
func (l *Load) Run(ctx context.Context, readsPerSec, writesPerSec int) {
	var wg sync.WaitGroup
	tick := func(rate int, f func()) {
		defer wg.Done()
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				wg.Add(1)
				go func() { defer wg.Done(); f() }()
			}
		}
	}
	wg.Add(2)
	go tick(readsPerSec, l.read)
	go tick(writesPerSec, l.write)
	wg.Wait()
}

func (l *Load) do(method, url, token, body string) (int, http.Header, []byte, time.Duration) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Host = strings.TrimPrefix(l.front, "http://") // one cache key, whichever proxy is asked
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, nil, time.Since(start)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, time.Since(start)
}

func (l *Load) count(f func(s *LoadStats)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.stats)
}

func (l *Load) failed(status int) {
	l.count(func(s *LoadStats) {
		key := "transport"
		if status != 0 {
			key = fmt.Sprint(status)
		}
		s.Errors[key]++
	})
}

func (l *Load) timed(s *LoadStats, took time.Duration) {
	if took > l.slow {
		s.Slow++
	}
	s.MaxLatency = max(s.MaxLatency, took)
}

func (l *Load) read() {
	p := l.posts[rand.IntN(len(l.posts))]
	list := rand.IntN(2) == 0
	start := time.Now()
	want, _ := p.want(start, PendingBound)
	path := fmt.Sprintf("/v1/posts/%d", p.id)
	if list {
		path = fmt.Sprintf("/v1/users/%d/posts", p.user)
	}
	st, h, b, took := l.do("GET", l.front+path, "", "")
	l.count(func(s *LoadStats) { s.Reads++; l.timed(s, took) })
	if st != http.StatusOK {
		l.failed(st)
		return
	}
	hit := isHit(h.Get("Cache-Status"))
	l.count(func(*LoadStats) {
		sec := l.second(time.Now())
		sec.reads++
		if hit {
			sec.hits++
		}
	})
	key := 0
	if list {
		key = 1
	}
	p.readAnswered(key, start, hit)
	got, ok := versionIn(b, p.id, list)
	if late := p.pendingLate(got, start); ok && late > 0 {
		l.count(func(s *LoadStats) { s.PendingLatest = max(s.PendingLatest, late) })
	}
	if ok && got < want {
		l.count(func(s *LoadStats) {
			s.Stale++
			if len(s.StaleExamples) < 5 {
				s.StaleExamples = append(s.StaleExamples, fmt.Sprintf("%s: version %d after %d was acknowledged (%s; read at %s, Cache-Status %q, Age %q)",
					path, got, want, p.ackText(want, start), start.Format("15:04:05.000"), h.Get("Cache-Status"), h.Get("Age")))
			}
		})
	}
}

// pendingLate is how long before read a "pending" acknowledgement of a
// version newer than got came, 0 if none did.
func (p *loadPost) pendingLate(got int64, read time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var late time.Duration
	for _, a := range p.pending {
		if a.version > got && a.at.Before(read) {
			late = max(late, read.Sub(a.at))
		}
	}
	return late
}

// ackText says how and when version v was acknowledged, as seen from a
// read sent at read.
func (p *loadPost) ackText(v int64, read time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	kind := "without pending"
	for _, a := range p.pending {
		if a.version == v {
			kind = "pending"
		}
	}
	at, ok := p.ackedAt[v]
	if !ok {
		return kind
	}
	return fmt.Sprintf("%s, at %s, %s before the read", kind, at.Format("15:04:05.000"), read.Sub(at).Round(time.Millisecond))
}

// versionIn finds post id's version in a post or list body.
func versionIn(b []byte, id int64, list bool) (int64, bool) {
	type post struct {
		ID      int64 `json:"id"`
		Version int64 `json:"version"`
	}
	if !list {
		var p post
		return p.Version, json.Unmarshal(b, &p) == nil && p.ID == id
	}
	var l struct{ Posts []post }
	if json.Unmarshal(b, &l) != nil {
		return 0, false
	}
	for _, p := range l.Posts {
		if p.ID == id {
			return p.Version, true
		}
	}
	return 0, false
}

func (l *Load) write() { l.writeVia(l.front, l.posts[rand.IntN(len(l.posts))]) }

// WriteEach edits every post once through the proxy at addr (host:port)
// directly, with the Host clients send.
func (l *Load) WriteEach(addr string) {
	for _, p := range l.posts {
		l.writeVia("http://"+addr, p)
	}
}

// WriteEachBySQL edits every post with an UPDATE on the primary, as a
// person at the SQL prompt or a batch job would; each new version counts as
// acknowledged with the durable path's bound (PendingBound).
func (l *Load) WriteEachBySQL(ctx context.Context, f *Fleet) error {
	db, err := sql.Open("mysql", f.Primary.DSN("edgecache"))
	if err != nil {
		return err
	}
	defer db.Close()
	for _, p := range l.posts {
		p.writing(true)
		_, err := db.ExecContext(ctx, "UPDATE posts SET body = CONCAT('sql edit ', RAND()) WHERE id = ?", p.id)
		p.writing(false)
		if err != nil {
			return err
		}
		var v int64
		if err := db.QueryRowContext(ctx, "SELECT version FROM posts WHERE id = ?", p.id).Scan(&v); err != nil {
			return err
		}
		p.mu.Lock()
		p.pending = append(p.pending, pendingAck{v, time.Now()})
		p.ackedAt[v] = time.Now()
		p.mu.Unlock()
		l.count(func(s *LoadStats) { s.Writes++; s.Acked++; s.Pending++ })
	}
	return nil
}

func (l *Load) writeVia(base string, p *loadPost) {
	p.writing(true)
	st, h, b, took := l.do("PUT", fmt.Sprintf("%s/v1/posts/%d", base, p.id), p.token,
		fmt.Sprintf(`{"body":"drill edit %d"}`, rand.Int64()))
	p.writing(false)
	l.count(func(s *LoadStats) { s.Writes++; l.timed(s, took) })
	if st != http.StatusOK {
		l.failed(st)
		return
	}
	var v struct{ Version int64 }
	if json.Unmarshal(b, &v) != nil {
		l.failed(st)
		return
	}
	pending := h.Get("Edgecache-Invalidation") == "pending"
	p.mu.Lock()
	p.ackedAt[v.Version] = time.Now()
	p.mu.Unlock()
	l.count(func(s *LoadStats) {
		s.Acked++
		s.WriteLatencies = append(s.WriteLatencies, took)
		if pending {
			s.Pending++
			l.second(time.Now()).pending++
		}
	})
	p.record(v.Version, pending)
}

// Sweep reads every post and list through each of the given proxies
// directly (Host as clients send it), after the drill, and counts what is
// older than acknowledged as stale.
func (l *Load) Sweep(proxies []string) {
	now := time.Now().Add(PendingBound + time.Second) // every pending ack is due
	for _, addr := range proxies {
		for _, p := range l.posts {
			want, _ := p.want(now, PendingBound)
			for _, list := range []bool{false, true} {
				path := fmt.Sprintf("/v1/posts/%d", p.id)
				if list {
					path = fmt.Sprintf("/v1/users/%d/posts", p.user)
				}
				req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
				req.Host = strings.TrimPrefix(l.front, "http://")
				resp, err := l.client.Do(req)
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got, ok := versionIn(b, p.id, list); ok && got < want {
					l.count(func(s *LoadStats) {
						s.Stale++
						if len(s.StaleExamples) < 5 {
							s.StaleExamples = append(s.StaleExamples, fmt.Sprintf("sweep %s%s: version %d after %d (Cache-Status %q)", addr, path, got, want, resp.Header.Get("Cache-Status")))
						}
					})
				}
			}
		}
	}
}

// CheckLost counts acknowledged versions that the database does not have;
// versions are the posts' current versions in the primary.
func (l *Load) CheckLost(versions map[int64]int64) {
	for _, p := range l.posts {
		if want, _ := p.want(time.Now().Add(24*time.Hour), PendingBound); versions[p.id] < want {
			l.count(func(s *LoadStats) { s.Lost++ })
		}
	}
}

// Stats returns a copy of what the load saw so far.
func (l *Load) Stats() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.WriteLatencies = append([]time.Duration(nil), l.stats.WriteLatencies...)
	s.Errors = make(map[string]int, len(l.stats.Errors))
	for k, v := range l.stats.Errors {
		s.Errors[k] = v
	}
	return s
}

// ErrorsText is the errors by status, "none" when there are none.
func (s LoadStats) ErrorsText() string {
	if len(s.Errors) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(s.Errors))
	for k := range s.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s×%d", k, s.Errors[k])
	}
	return b.String()
}
