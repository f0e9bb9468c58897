// Memcached membership from the operator's side: spare nodes that are not
// in the seed list (so that a drill or an operator can add one), and the
// invalidators' admin endpoints that change and report membership
// (GET /memcached, POST /memcached/add|remove|replace; proxy/invalidator).

package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"edgecache/deploy/localstack"
	"edgecache/proxy/ring"
)

// sparesDir is the run folder's folder of spare memcached nodes.
const sparesDir = "spares"

// StartSpareMemcached starts a memcached node that no proxy or invalidator
// knows (it is not among their seeds): an empty node at a new address, to
// be added or put in place of another. It returns its address.
func (f *Fleet) StartSpareMemcached(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sparesStarted++
	dir := filepath.Join(f.dir, sparesDir, "memcached-"+strconv.Itoa(f.sparesStarted))
	m, err := localstack.StartMemcachedIn(ctx, dir, f.memcachedMB)
	if err != nil {
		return "", fmt.Errorf("spare memcached: %w", err)
	}
	f.spares[m.Addr] = m
	return m.Addr, nil
}

// StopSpareMemcached ends a spare node StartSpareMemcached started.
func (f *Fleet) StopSpareMemcached(addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.spares[addr]
	if m == nil {
		return fmt.Errorf("no spare memcached node at %s", addr)
	}
	m.Stop()
	delete(f.spares, addr)
	return nil
}

// MemcachedAddr is the zone's memcached node's address (also after it was
// killed with its zone: it is still a member until removed).
func (f *Fleet) MemcachedAddr(zone string) (string, error) {
	z, err := f.zone(zone)
	if err != nil {
		return "", err
	}
	return z.memcachedAddr, nil
}

// MemcachedState is an invalidator's GET /memcached: the newest generation
// of the membership, what operators asked for, and (from the leader) each
// node's health.
type MemcachedState struct {
	Generation uint64          `json:"generation"` // 0: no decider has run yet
	Phase      string          `json:"phase"`      // settled, dual-write or dual-read; none before generation 1
	Read       []string        `json:"read"`
	Write      [][]string      `json:"write"`
	Desired    []string        `json:"desired"`
	Nodes      []MemcachedNode `json:"nodes"`
	Leading    bool            `json:"leading"`
}

// MemcachedNode is one node's health as the leading invalidator sees it.
type MemcachedNode struct {
	Node              string  `json:"node"`
	Up                bool    `json:"up"`
	FailingForSeconds float64 `json:"failing_for_seconds"`
	Member            bool    `json:"member"`
}

// SettledOn reports whether the membership is settled with exactly nodes
// in its read set, in any order.
func (s MemcachedState) SettledOn(nodes []string) bool {
	return s.Phase == "settled" && slices.Equal(sorted(s.Read), sorted(nodes))
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// String is the state in one line per part, as the console prints it.
func (s MemcachedState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d, %s (answered by the %s)\n", s.Generation, s.Phase, map[bool]string{true: "leader", false: "standby"}[s.Leading])
	if s.Generation == 0 {
		b.WriteString("  no generation yet: no decider has run; the processes use their seeds\n")
	}
	fmt.Fprintf(&b, "  read    %s\n", strings.Join(s.Read, " "))
	for _, w := range s.Write {
		fmt.Fprintf(&b, "  write   %s\n", strings.Join(w, " "))
	}
	fmt.Fprintf(&b, "  desired %s", strings.Join(s.Desired, " "))
	for _, n := range s.Nodes {
		health := "up"
		if !n.Up {
			health = fmt.Sprintf("failing for %.0f s", n.FailingForSeconds)
		}
		member := "member"
		if !n.Member {
			member = "not a member"
		}
		fmt.Fprintf(&b, "\n  node %s: %s, %s", n.Node, health, member)
	}
	return b.String()
}

// parseMemcachedAnswer reads an answer of the membership endpoints: the
// state on 200, else an error with the status and the JSON error's
// message (the body as it is when it is not JSON).
func parseMemcachedAnswer(status int, body []byte) (MemcachedState, error) {
	if status != http.StatusOK {
		var e struct {
			Error json.RawMessage `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
			// {"error":"text"} or {"error":{"code":..,"message":"text"}}
			var text string
			var obj struct{ Code, Message string }
			if json.Unmarshal(e.Error, &text) == nil {
				msg = text
			} else if json.Unmarshal(e.Error, &obj) == nil && obj.Message != "" {
				msg = strings.TrimPrefix(obj.Code+": "+obj.Message, ": ")
			}
		}
		return MemcachedState{}, fmt.Errorf("%d %s: %s", status, http.StatusText(status), msg)
	}
	var s MemcachedState
	if err := json.Unmarshal(body, &s); err != nil {
		return MemcachedState{}, fmt.Errorf("membership answer: %w", err)
	}
	if s.Generation > 0 && (len(s.Read) == 0 || len(s.Write) == 0) {
		return MemcachedState{}, fmt.Errorf("membership answer: generation %d without read or write sets", s.Generation)
	}
	return s, nil
}

// MemcachedStatus asks the leading invalidator (any running one when none
// leads) for the membership.
func (f *Fleet) MemcachedStatus(ctx context.Context) (MemcachedState, error) {
	return f.memcachedCall(ctx, "GET", "/memcached", nil)
}

// AddMemcached, RemoveMemcached and ReplaceMemcached ask for a membership
// change (the operator's commands): the invalidator records it as the
// desired nodes, and the leader moves the fleet there in generations.
func (f *Fleet) AddMemcached(ctx context.Context, node string) (MemcachedState, error) {
	return f.memcachedCall(ctx, "POST", "/memcached/add", url.Values{"node": {node}})
}

func (f *Fleet) RemoveMemcached(ctx context.Context, node string) (MemcachedState, error) {
	return f.memcachedCall(ctx, "POST", "/memcached/remove", url.Values{"node": {node}})
}

func (f *Fleet) ReplaceMemcached(ctx context.Context, old, replacement string) (MemcachedState, error) {
	return f.memcachedCall(ctx, "POST", "/memcached/replace", url.Values{"old": {old}, "new": {replacement}})
}

func (f *Fleet) memcachedCall(ctx context.Context, method, path string, q url.Values) (MemcachedState, error) {
	admin, err := f.invalidatorAdmin()
	if err != nil {
		return MemcachedState{}, err
	}
	u := "http://" + admin + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return MemcachedState{}, err
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return MemcachedState{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return MemcachedState{}, err
	}
	return parseMemcachedAnswer(resp.StatusCode, body)
}

// invalidatorAdmin is the admin address of the leading invalidator, or of
// any running one when none leads (a standby answers the same, without
// the nodes' health).
func (f *Fleet) invalidatorAdmin() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	standby := ""
	for _, name := range Zones {
		z := f.zones[name]
		if z.Invalidator == nil {
			continue
		}
		if z.Invalidator.Leading() {
			return z.invalidatorAdminAddr, nil
		}
		if standby == "" {
			standby = z.invalidatorAdminAddr
		}
	}
	if standby == "" {
		return "", errors.New("no invalidator is running")
	}
	return standby, nil
}

// InvalidatorAdminAddr is the zone's invalidator's admin listener, "" in
// a zone without one.
func (z *Zone) InvalidatorAdminAddr() string { return z.invalidatorAdminAddr }

// startInvalidatorAdmin serves the zone's invalidator's admin endpoints on
// a free loopback port.
func (z *Zone) startInvalidatorAdmin() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	z.invalidatorAdmin = &http.Server{Handler: z.Invalidator.Handler(), ReadHeaderTimeout: 5 * time.Second}
	z.invalidatorAdminAddr = ln.Addr().String()
	go z.invalidatorAdmin.Serve(ln)
	return nil
}

// stopInvalidator ends the zone's invalidator and its admin listener.
func (z *Zone) stopInvalidator() {
	if z.invalidatorAdmin != nil {
		z.invalidatorAdmin.Close()
		z.invalidatorAdmin = nil
	}
	if z.Invalidator != nil {
		z.Invalidator.Stop()
		z.Invalidator = nil
	}
}

// WaitMemcached polls the membership (every 100 ms) until settled reports
// the state it waits for, and returns it; or ctx's error with the last
// state seen.
func (f *Fleet) WaitMemcached(ctx context.Context, settled func(MemcachedState) bool) (MemcachedState, error) {
	var last MemcachedState
	var lastErr error
	for {
		s, err := f.MemcachedStatus(ctx)
		if err == nil && settled(s) {
			return s, nil
		}
		if err == nil {
			last = s
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("membership did not get there (last seen: generation %d %s, read %v; last error %v): %w",
				last.Generation, last.Phase, last.Read, lastErr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// movedShare is the share of keys whose node differs between read sets a
// and b (ring.Pick), over a sample of made-up keys: what a change from a
// to b must refetch at least.
func movedShare(a, b []string) float64 {
	const sample = 100000
	moved := 0
	for i := range sample {
		k := "k" + strconv.Itoa(i)
		if a[ring.Pick(a, k)] != b[ring.Pick(b, k)] {
			moved++
		}
	}
	return float64(moved) / sample
}
