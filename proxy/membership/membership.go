// Package membership owns the memcached membership document: which nodes
// hold keys now (the read set), where a write's moves must go (the write
// sets), and the generations before, so that a reader can tell whether a
// group value it finds was kept moved where it finds it.
//
// One decider changes membership: the leading invalidator (package
// invalidator) records each generation in the database and writes the
// document to every node under Key. Every proxy, and the invalidator's own
// store, follows the newest generation it can read (package store).
//
// A change from read set A to read set B is three generations, each
// published only once every process has either seen the one before or
// stopped using memcached (a follower that has not read the document for
// the view time stops trusting its view):
//
//	dual-write: read A, moves go to A and B
//	dual-read:  read B, moves go to A and B
//	settled:    read B, moves go to B
//
// So processes one generation apart never disagree about a key: a reader's
// places are always among every adjacent writer's. What this cannot cover
// is time: a group value on a node that gained the key in this change may
// have been left there by an older generation that placed the key here,
// then elsewhere, and every write since moved it elsewhere. Each group
// value therefore carries the generation that last wrote it, and Kept says
// whether every generation since placed it where it is read.
package membership

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"edgecache/proxy/ring"
)

// Key is the document's memcached key, on every node of every set.
const Key = "m:members"

// Keep is how many generations the document remembers. A group value last
// written before the oldest of them is not trusted (Kept); each change
// takes three.
const Keep = 48

// Gen is one generation of the membership.
type Gen struct {
	N     uint64
	Read  []string   // where keys are read and stored, sorted
	Write [][]string // where moves go, sorted sets; Read is one of them
}

// Doc is the membership document: how long a follower may trust what it
// read, and the generations, newest first.
type Doc struct {
	View time.Duration
	Gens []Gen
}

const magic = "members 1 "

// Current is the newest generation.
func (d Doc) Current() Gen { return d.Gens[0] }

// Phase names where a generation stands in a change.
func (g Gen) Phase() string {
	switch {
	case len(g.Write) == 1:
		return "settled"
	case slices.Equal(g.Read, g.Write[0]):
		return "dual-write"
	default:
		return "dual-read"
	}
}

// Nodes is every node of g's sets, sorted, each once.
func (g Gen) Nodes() []string {
	var all []string
	for _, s := range g.Write {
		all = append(all, s...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// Bytes is the document as memcached holds it:
//
//	members 1 <view ms>
//	<n> <read,...> <write,...>[|<write,...>]
//	... older generations
func (d Doc) Bytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%d\n", magic, d.View.Milliseconds())
	for _, g := range d.Gens {
		b.WriteString(g.Line())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Line is g as one line of the document: "<n> <read,...> <write,...>[|<write,...>]"
// (the decider keeps it so in the database too).
func (g Gen) Line() string {
	sets := make([]string, len(g.Write))
	for i, s := range g.Write {
		sets[i] = strings.Join(s, ",")
	}
	return fmt.Sprintf("%d %s %s", g.N, strings.Join(g.Read, ","), strings.Join(sets, "|"))
}

// Parse reads a document. Anything malformed is an error: a follower keeps
// the view it has.
func Parse(b []byte) (Doc, error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	head, ok := strings.CutPrefix(lines[0], magic)
	if !ok {
		return Doc{}, errors.New("membership: not a membership document")
	}
	ms, err := strconv.ParseUint(head, 10, 32)
	if err != nil || ms == 0 {
		return Doc{}, errors.New("membership: bad view time")
	}
	d := Doc{View: time.Duration(ms) * time.Millisecond}
	for _, line := range lines[1:] {
		g, err := ParseGen(line)
		if err != nil {
			return Doc{}, err
		}
		if len(d.Gens) > 0 && g.N >= d.Gens[len(d.Gens)-1].N {
			return Doc{}, errors.New("membership: generations out of order")
		}
		d.Gens = append(d.Gens, g)
	}
	if len(d.Gens) == 0 || len(d.Gens) > Keep {
		return Doc{}, errors.New("membership: no generation, or too many")
	}
	return d, nil
}

// ParseGen reads one generation's Line.
func ParseGen(line string) (Gen, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return Gen{}, fmt.Errorf("membership: bad generation line %q", line)
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil || n == 0 {
		return Gen{}, fmt.Errorf("membership: bad generation number %q", f[0])
	}
	g := Gen{N: n, Read: parseSet(f[1])}
	for _, s := range strings.Split(f[2], "|") {
		g.Write = append(g.Write, parseSet(s))
	}
	if err := g.check(); err != nil {
		return Gen{}, err
	}
	return g, nil
}

func parseSet(s string) []string { return strings.Split(s, ",") }

// check says whether g is one a decider could have made.
func (g Gen) check() error {
	if len(g.Write) < 1 || len(g.Write) > 2 {
		return errors.New("membership: one or two write sets")
	}
	for _, s := range append([][]string{g.Read}, g.Write...) {
		if len(s) == 0 || !slices.IsSorted(s) || len(slices.Compact(slices.Clone(s))) != len(s) {
			return errors.New("membership: a set must be sorted, without duplicates")
		}
		for _, a := range s {
			if a == "" || strings.ContainsAny(a, " ,|\n") {
				return fmt.Errorf("membership: bad node address %q", a)
			}
		}
	}
	if !slices.ContainsFunc(g.Write, func(s []string) bool { return slices.Equal(s, g.Read) }) {
		return errors.New("membership: the read set must be a write set")
	}
	return nil
}

// Settled is the first generation of a fleet: read and write nodes.
func Settled(n uint64, nodes []string) Gen {
	s := sortedSet(nodes)
	return Gen{N: n, Read: s, Write: [][]string{s}}
}

func sortedSet(nodes []string) []string {
	s := slices.Clone(nodes)
	slices.Sort(s)
	return slices.Compact(s)
}

// Next is the generation after cur on the way to reading target, and false
// when cur is settled on target already. A change under way is finished
// before another begins.
func Next(cur Gen, target []string) (Gen, bool) {
	target = sortedSet(target)
	switch cur.Phase() {
	case "dual-write":
		return Gen{N: cur.N + 1, Read: cur.Write[1], Write: cur.Write}, true
	case "dual-read":
		return Settled(cur.N+1, cur.Read), true
	}
	if len(target) == 0 || slices.Equal(target, cur.Read) {
		return cur, false
	}
	return Gen{N: cur.N + 1, Read: cur.Read, Write: [][]string{cur.Read, target}}, true
}

// With is d with g as its newest generation and the oldest dropped beyond
// Keep.
func (d Doc) With(g Gen) Doc {
	gens := append([]Gen{g}, d.Gens...)
	if len(gens) > Keep {
		gens = gens[:Keep]
	}
	return Doc{View: d.View, Gens: gens}
}

// Kept reports whether a group value found under key on node (key as
// placed: "1~k" for k's second place, package ring), last written by generation
// since, saw every move made after it: every generation after since, up to
// the newest, sent its moves of key there. A value from a generation newer
// than d's newest was written by a process that is ahead: kept.
func (d Doc) Kept(key, node string, since uint64) bool {
	cur := d.Gens[0].N
	if since >= cur {
		return true
	}
	oldest := d.Gens[len(d.Gens)-1].N
	if since+1 < oldest {
		return false // older than what the document remembers
	}
	for _, g := range d.Gens {
		if g.N <= since {
			break
		}
		// A set of one node has no second place: moves there update the
		// key's own place only.
		if !slices.ContainsFunc(g.Write, func(s []string) bool {
			return !(len(s) == 1 && strings.HasPrefix(key, "1~")) && s[ring.Pick(s, key)] == node
		}) {
			return false
		}
	}
	return true
}
