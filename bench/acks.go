package bench

import (
	"sort"
	"sync"
	"sync/atomic"
)

// The read-after-write check. Every acknowledged write moves a global
// sequence number and is logged with it; a read takes the sequence number
// just before it is sent, and its answer is compared with what had been
// acknowledged up to that number. A read that shows older data than that is
// stale: the guarantee (README, at the top) is exactly that this never
// happens.
// Reads sent while a write is still in flight are not judged by that write.

// Stale-check kinds: a post, a user's first page of posts, a user's profile.
const (
	checkItem = iota
	checkList
	checkProfile
	numChecks
)

var checkNames = [numChecks]string{"item", "list", "profile"}

// ackEntry is one acknowledgement: after sequence number seq, at least value.
type ackEntry struct {
	seq   int64
	value int64
}

// ackHistory is a key's acknowledged lower bounds in sequence order; values
// never decrease (two edits acknowledged out of order keep the higher one).
type ackHistory []ackEntry

func (h *ackHistory) add(seq, value int64) {
	if n := len(*h); n > 0 && (*h)[n-1].value >= value {
		value = (*h)[n-1].value
	}
	*h = append(*h, ackEntry{seq, value})
}

// at is the highest value acknowledged at or before seq, 0 if none.
func (h ackHistory) at(seq int64) int64 {
	// Nearly every read is sent after its key's last acknowledgement: a
	// hot post's history is long, and this saves the search through it.
	if n := len(h); n > 0 && h[n-1].seq <= seq {
		return h[n-1].value
	}
	i := sort.Search(len(h), func(i int) bool { return h[i].seq > seq })
	if i == 0 {
		return 0
	}
	return h[i-1].value
}

// createdPost is a post the run created, acknowledged at seq.
type createdPost struct {
	seq int64
	id  int64
}

// acks is the log of acknowledged writes, shared by all workers.
type acks struct {
	seq atomic.Int64

	mu       sync.RWMutex
	versions map[int64]ackHistory // post id → acknowledged versions
	counts   []ackHistory         // user index → acknowledged post_count lower bound
	created  [][]createdPost      // user index → posts created by this run
}

// newAcks starts the log from the seed's known state (sequence 0).
func newAcks(seed *Seed) *acks {
	a := &acks{
		versions: make(map[int64]ackHistory, len(seed.Posts)),
		counts:   make([]ackHistory, len(seed.Users)),
		created:  make([][]createdPost, len(seed.Users)),
	}
	for _, p := range seed.Posts {
		a.versions[p.ID] = ackHistory{{0, p.Version}}
	}
	for i, u := range seed.Users {
		a.counts[i] = ackHistory{{0, u.PostCount}}
	}
	return a
}

// now is the sequence number a read takes just before it is sent.
func (a *acks) now() int64 { return a.seq.Load() }

// edited logs an acknowledged edit of post id to version.
func (a *acks) edited(id, version int64) {
	a.mu.Lock()
	h := a.versions[id]
	h.add(a.seq.Add(1), version)
	a.versions[id] = h
	a.mu.Unlock()
}

// createdBy logs an acknowledged new post of user index u.
func (a *acks) createdBy(u int, id, version int64) {
	a.mu.Lock()
	seq := a.seq.Add(1)
	a.versions[id] = ackHistory{{seq, version}}
	a.created[u] = append(a.created[u], createdPost{seq, id})
	c := &a.counts[u]
	c.add(seq, c.at(seq)+1)
	a.mu.Unlock()
}

// staleItem reports whether a post read sent at seq that showed version is
// older than an acknowledged write.
func (a *acks) staleItem(seq, id, version int64) (stale bool, want int64) {
	a.mu.RLock()
	want = a.versions[id].at(seq)
	a.mu.RUnlock()
	return version < want, want
}

// staleProfile reports whether a profile read sent at seq shows fewer posts
// than the creates acknowledged before it imply (the bench never deletes).
func (a *acks) staleProfile(seq int64, u int, postCount int64) (stale bool, want int64) {
	a.mu.RLock()
	want = a.counts[u].at(seq)
	a.mu.RUnlock()
	return postCount < want, want
}

// listedPost is what the check needs from one entry of a list page.
type listedPost struct {
	ID, Version int64
}

// staleList judges the first page (newest first, no cursor) of user u's posts,
// read at seq with the given limit: stale if a listed post is older than its
// acknowledged version, or if a post this run created and saw acknowledged is
// missing although it must be on the page (the page is not full, or it shows
// an older post than the missing one; ids grow with creation time).
func (a *acks) staleList(seq int64, u int, page []listedPost, limit int) (stale bool, why string) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	oldest := int64(-1)
	for _, p := range page {
		if want := a.versions[p.ID].at(seq); p.Version < want {
			return true, "post " + itoa(p.ID) + " at version " + itoa(p.Version) + ", acknowledged " + itoa(want)
		}
		if oldest < 0 || p.ID < oldest {
			oldest = p.ID
		}
	}
	created := a.created[u]
	// Only the newest `limit` creates can be required on the first page.
	for i := len(created) - 1; i >= 0 && i >= len(created)-limit; i-- {
		c := created[i]
		if c.seq > seq || shows(page, c.id) {
			continue
		}
		if len(page) < limit || c.id > oldest {
			return true, "acknowledged new post " + itoa(c.id) + " missing from the first page"
		}
	}
	return false, ""
}

// lowerBounds copies the acknowledged state back into the seed so the next
// run starts from it.
func (a *acks) lowerBounds(seed *Seed) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for i := range seed.Posts {
		if h := a.versions[seed.Posts[i].ID]; len(h) > 0 {
			seed.Posts[i].Version = h[len(h)-1].value
		}
	}
	for i := range seed.Users {
		if h := a.counts[i]; len(h) > 0 {
			seed.Users[i].PostCount = h[len(h)-1].value
		}
	}
}

// shows reports whether a page lists post id; a page holds at most 100
// posts, where a scan costs less than building a set for every list read.
func shows(page []listedPost, id int64) bool {
	for _, p := range page {
		if p.ID == id {
			return true
		}
	}
	return false
}
