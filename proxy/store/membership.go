package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"

	"edgecache/proxy/membership"
)

// Membership: which nodes' contents may be trusted.
//
// A node taken out of the list and put back later holds group values that
// no write moved while it was out: the writers of that time placed those
// groups elsewhere. Its old entries and its old group values agree with
// each other, so they would validate again. The same holds for a node that
// was unreachable while a membership changed. So every node keeps a stamp
// (stampKey): its own id (random, chosen when it is first stamped) and the
// generation and member ids of the last membership it was part of. A
// process trusts a node only if its stamp has the newest generation the
// process can see and lists the node among that generation's members.
// Anything else is flushed before use, and a new generation is stamped on
// every node of the process's list.
//
// Nodes are known by their ids, not their addresses. The same node reached
// at another address (a relay, a DNS name instead of an IP) is the same
// member. A restarted node, which is empty, comes back without a stamp and
// so as a new member.
//
// A process starting with a list that differs from the newest generation's
// makes its own list the next generation: a new configuration wins. A
// process that is already running and finds a newer generation with other
// members is outdated. Its view of where keys live is no longer the fleet's,
// so it stops using memcached (every node down: reads go to the origin,
// writes answer "pending") until it is restarted with the new list.
//
// Processes check the stamps every probe interval. Between a change and the
// next check (one PROXY_MEMCACHED_PROBE_INTERVAL), an outdated process may
// still read and move groups where the old list placed them. A rolling
// change of the list therefore has that window: proxy/PROTOCOL.md lists it.

// stampKey is the stamp's key, on every node.
const stampKey = "m:stamp"

const stampMagic = "stamp 1 "

// stamp is one node's: "stamp 1 <generation> <node id> <member ids, sorted, comma-separated>".
type stamp struct {
	gen     uint64
	node    string
	members []string
}

func (st stamp) bytes() []byte {
	return []byte(stampMagic + strconv.FormatUint(st.gen, 10) + " " + st.node + " " + strings.Join(st.members, ","))
}

func parseStamp(b []byte) (stamp, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(stampMagic))
	if !ok {
		return stamp{}, false
	}
	f := strings.Fields(string(rest))
	if len(f) != 3 {
		return stamp{}, false
	}
	gen, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || gen == 0 || f[1] == "" {
		return stamp{}, false
	}
	members := strings.Split(f[2], ",")
	if !slices.Contains(members, f[1]) || !slices.IsSorted(members) {
		return stamp{}, false
	}
	return stamp{gen: gen, node: f[1], members: members}, true
}

func newNodeID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stamped is the generation this process follows and which of its nodes
// are members of it.
type stamped struct {
	mu       sync.Mutex
	gen      uint64   // 0: not joined yet
	members  []string // the ids of generation gen
	ids      []string // per node: its id as last read ("" unknown)
	member   []bool   // per node: stamped in gen, so trusted
	outdated bool
}

var errOutdated = errors.New("memcached: the fleet's membership has changed: restart with the new PROXY_MEMCACHED list")

// stampRead is what reading one node's stamp found.
type stampRead struct {
	st      stamp
	ok      bool // a stamp that parses
	reached bool // the node answered
	doc     bool // the node holds a membership document (follow.go)
}

// readStamps reads every node's stamp, and whether it holds a membership
// document: then a decider runs, and stamps must not be acted on.
func (s *Store) readStamps() []stampRead {
	reads := make([]stampRead, s.ring.Len()) // static: every node is a configured one
	var wg sync.WaitGroup
	for n, p := range s.probes[:len(reads)] {
		wg.Go(func() {
			items, err := p.GetMulti([]string{stampKey, membership.Key})
			if err != nil {
				return
			}
			reads[n].reached = true
			if it := items[stampKey]; it != nil {
				reads[n].st, reads[n].ok = parseStamp(it.Value)
			}
			reads[n].doc = items[membership.Key] != nil
		})
	}
	wg.Wait()
	return reads
}

// checkMembership reads every node's stamp and decides, under the rules
// above, which nodes this process may use. It flushes and stamps the
// nodes that need it, and marks down the nodes that are not members. A
// membership document on any node stops it: this process missed it when
// it looked (follow), and follows it at its next look, with nothing
// flushed meanwhile.
func (s *Store) checkMembership() {
	reads := s.readStamps()
	reached := false
	for _, r := range reads {
		if r.doc {
			return
		}
		reached = reached || r.reached
	}
	if !reached {
		return // nothing known yet: no node is used (inView)
	}
	s.static.Store(true)
	mb := &s.membership
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.outdated {
		return
	}
	var newest stamp
	for _, r := range reads {
		if r.ok && r.st.gen > newest.gen {
			newest = r.st
		}
	}
	for n, r := range reads {
		if r.ok {
			mb.ids[n] = r.st.node
		}
	}
	if newest.gen > mb.gen && mb.gen != 0 && !s.compatible(newest, reads) {
		mb.outdated = true
		for n := range mb.member {
			mb.member[n] = false
			s.ring.SetDown(n, true)
		}
		s.m.outdated.Set(1)
		s.log.Error("memcached membership changed under this process: it stops using memcached", zap.Error(errOutdated),
			zap.Uint64("generation", newest.gen), zap.Strings("members", newest.members), zap.Uint64("ours", mb.gen))
		return
	}
	// A node is trusted if it is a member of the newest generation.
	good := make([]bool, len(reads))
	var restamp []int
	establish := false
	for n, r := range reads {
		switch {
		case !r.reached:
			// Says nothing: it stays as it was (a member that stalls is
			// still one; the failures of operations mark it down).
			good[n] = mb.member[n]
		case r.ok && r.st.gen == newest.gen && slices.Contains(newest.members, r.st.node):
			good[n] = true
		case !r.ok && mb.member[n] && mb.gen >= newest.gen:
			// A member of our generation that lost its stamp (flush_all,
			// a restart, the stamp evicted): whatever it holds was
			// written since by members, so it is stamped again, not
			// flushed.
			good[n] = true
			restamp = append(restamp, n)
		default:
			establish = true
		}
	}
	if newest.gen < mb.gen {
		newest = stamp{gen: mb.gen, members: mb.members} // every stamp of ours lost
	}
	if !establish && !s.coversMembers(newest, reads, good) {
		establish = true // the newest generation has members this list lacks: our list is the newer one
	}
	if !establish {
		if newest.gen > mb.gen {
			mb.gen, mb.members = newest.gen, newest.members
		}
		for _, n := range restamp {
			st := stamp{gen: mb.gen, node: mb.ids[n], members: mb.members}
			if err := s.probes[n].Set(&memcache.Item{Key: stampKey, Value: st.bytes()}); err != nil {
				good[n] = false
			}
		}
		s.applyMembers(good)
		return
	}
	s.establish(max(newest.gen, mb.gen)+1, reads, good)
}

// compatible reports whether st's members are this process's nodes: each
// id one of ours, or one of our nodes that did not answer, and none of our
// stamped nodes left out.
func (s *Store) compatible(st stamp, reads []stampRead) bool {
	unknown := 0
	ours := map[string]bool{}
	for n, r := range reads {
		switch {
		case r.ok:
			ours[r.st.node] = true
		case !r.reached && s.membership.ids[n] != "":
			ours[s.membership.ids[n]] = true
		case !r.reached:
			unknown++
		}
	}
	for _, id := range st.members {
		if !ours[id] {
			if unknown == 0 {
				return false
			}
			unknown--
		}
	}
	for _, r := range reads {
		if r.ok && !slices.Contains(st.members, r.st.node) {
			return false // one of our nodes, stamped, left out of it
		}
	}
	return true
}

// coversMembers reports whether every member of st is one of our good
// nodes or could be one of our nodes that did not answer.
func (s *Store) coversMembers(st stamp, reads []stampRead, good []bool) bool {
	ours := map[string]bool{}
	unreached := 0
	for n, r := range reads {
		if good[n] {
			ours[r.st.node] = true
		}
		if !r.reached {
			unreached++
		}
	}
	missing := 0
	for _, id := range st.members {
		if !ours[id] {
			missing++
		}
	}
	return missing <= unreached
}

// establish makes this process's reachable nodes generation gen: every node
// that was not a trusted member is flushed first, then every node is
// stamped. Nodes that did not answer are left out, and join a later
// generation when they answer.
func (s *Store) establish(gen uint64, reads []stampRead, good []bool) {
	mb := &s.membership
	ids := make([]string, len(reads))
	var members []string
	for n, r := range reads {
		if !r.reached {
			continue
		}
		if !good[n] {
			if err := s.probes[n].FlushAll(); err != nil {
				s.log.Warn("memcached node not flushed before joining; left out", zap.String("node", s.NodeAddr(n)), zap.Error(err))
				continue
			}
			s.m.joinFlushes.Inc()
		}
		ids[n] = newNodeID()
		if r.ok {
			ids[n] = r.st.node
		}
		members = append(members, ids[n])
	}
	slices.Sort(members)
	joined := make([]bool, len(reads))
	for n := range reads {
		if ids[n] == "" {
			continue
		}
		st := stamp{gen: gen, node: ids[n], members: members}
		if err := s.probes[n].Set(&memcache.Item{Key: stampKey, Value: st.bytes()}); err != nil {
			s.log.Warn("memcached node not stamped; left out", zap.String("node", s.NodeAddr(n)), zap.Error(err))
			continue
		}
		mb.ids[n], joined[n] = ids[n], true
	}
	mb.gen, mb.members = gen, members
	s.applyMembers(joined)
	s.log.Info("memcached membership: new generation", zap.Uint64("generation", gen), zap.Strings("members", members))
}

// applyMembers uses exactly the member nodes: the others are marked down
// (Run checks them again when they answer).
func (s *Store) applyMembers(member []bool) {
	mb := &s.membership
	for n, ok := range member {
		mb.member[n] = ok
		if !ok {
			s.ring.SetDown(n, true)
		}
	}
	s.m.generation.Set(float64(mb.gen))
}

// isMember reports whether node n may be used (a followed generation
// decides that instead: follow.go).
func (s *Store) isMember(n int) bool {
	if s.follows() {
		return true
	}
	s.membership.mu.Lock()
	defer s.membership.mu.Unlock()
	return s.membership.member[n] && !s.membership.outdated
}
