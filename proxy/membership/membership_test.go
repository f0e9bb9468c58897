package membership

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"edgecache/proxy/ring"
)

func TestDocumentRoundTrips(t *testing.T) {
	d := Doc{View: 2 * time.Second, Gens: []Gen{
		{N: 3, Read: []string{"a:1", "b:1"}, Write: [][]string{{"a:1", "b:1"}, {"a:1", "b:1", "c:1"}}},
		Settled(2, []string{"b:1", "a:1"}),
	}}
	got, err := Parse(d.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Bytes()) != string(d.Bytes()) || got.View != d.View || len(got.Gens) != 2 {
		t.Fatalf("round trip: %q, want %q", got.Bytes(), d.Bytes())
	}
}

func TestParseRefusesWhatNoDeciderWrites(t *testing.T) {
	for _, doc := range []string{
		"",
		"members 1 0\n1 a:1 a:1\n",               // no view time
		"members 1 2000\n",                       // no generation
		"members 1 2000\n1 b:1,a:1 b:1,a:1",      // unsorted
		"members 1 2000\n1 a:1,a:1 a:1,a:1",      // duplicate
		"members 1 2000\n1 a:1 b:1\n",            // read set not written
		"members 1 2000\n1 a:1 a:1|b:1|c:1",      // three write sets
		"members 1 2000\n1 a:1 a:1\n2 a:1 a:1\n", // out of order
		"members 1 2000\n0 a:1 a:1\n",
		"members 1 2000\n1 a:1,,b:1 a:1,,b:1\n",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("Parse(%q) accepted", doc)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("members 1 2000\n3 a:1,b:1 a:1,b:1|a:1,b:1,c:1\n2 a:1,b:1 a:1,b:1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(d.Bytes())
		if err != nil || string(again.Bytes()) != string(d.Bytes()) {
			t.Fatalf("a parsed document does not parse back: %v", err)
		}
		for _, g := range d.Gens {
			d.Kept("g:x", g.Read[0], g.N) // must not panic
		}
	})
}

// A change takes three generations, and adjacent generations always agree:
// every reader's places are among every adjacent writer's.
func TestChangeGoesThroughThreeAdjacentSafeGenerations(t *testing.T) {
	g := Settled(1, []string{"a:1", "b:1"})
	var gens []Gen
	for _, target := range [][]string{{"a:1", "b:1", "c:1"}, {"a:1", "c:1"}} {
		for {
			next, ok := Next(g, target)
			if !ok {
				break
			}
			gens = append(gens, next)
			g = next
		}
	}
	var phases []string
	for _, g := range gens {
		phases = append(phases, g.Phase())
	}
	if want := []string{"dual-write", "dual-read", "settled", "dual-write", "dual-read", "settled"}; !slices.Equal(phases, want) {
		t.Fatalf("phases %v, want %v", phases, want)
	}
	all := append([]Gen{Settled(1, []string{"a:1", "b:1"})}, gens...)
	for i := 1; i < len(all); i++ {
		for _, pair := range [][2]Gen{{all[i-1], all[i]}, {all[i], all[i-1]}} {
			reader, writer := pair[0], pair[1]
			for k := range 2000 {
				key := fmt.Sprintf("g:%d", k)
				for _, placed := range []string{key, "1~" + key} {
					at := reader.Read[ring.Pick(reader.Read, placed)]
					if !slices.ContainsFunc(writer.Write, func(s []string) bool { return s[ring.Pick(s, placed)] == at }) {
						t.Fatalf("generation %d reads %s on %s, generation %d does not move it there", reader.N, placed, at, writer.N)
					}
				}
			}
		}
	}
}

// The counterexample Kept exists for: a node added, then removed. Keys go
// back to the nodes that held them before the add, whose values no write
// moved while the added node held the keys.
func TestKeptRefusesValuesLeftBehindByAnEarlierPlacement(t *testing.T) {
	d := Doc{View: time.Second, Gens: []Gen{Settled(1, []string{"a:1", "b:1"})}}
	for _, target := range [][]string{{"a:1", "b:1", "c:1"}, {"a:1", "b:1"}} {
		for {
			next, ok := Next(d.Current(), target)
			if !ok {
				break
			}
			d = d.With(next)
		}
	}
	if d.Current().N != 7 {
		t.Fatalf("generation %d, want 7", d.Current().N)
	}
	stale, kept := 0, 0
	for k := range 3000 {
		key := fmt.Sprintf("g:%d", k)
		at := d.Current().Read[ring.Pick(d.Current().Read, key)]
		wentToC := Settled(0, []string{"a:1", "b:1", "c:1"}).Read[ring.Pick([]string{"a:1", "b:1", "c:1"}, key)] == "c:1"
		switch {
		case wentToC && d.Kept(key, at, 1):
			t.Fatalf("%s: a value written in generation 1 on %s is trusted after the key lived on c:1", key, at)
		case wentToC:
			stale++
		case !d.Kept(key, at, 1):
			t.Fatalf("%s never left %s, yet its generation 1 value is refused", key, at)
		default:
			kept++
		}
		if !d.Kept(key, at, 7) || !d.Kept(key, at, 9) {
			t.Fatalf("%s: a value of the newest generation (or newer) refused", key)
		}
	}
	if stale == 0 || kept == 0 {
		t.Fatalf("stale %d, kept %d: the case is not exercised", stale, kept)
	}
}

func TestKeptRefusesWhatTheDocumentNoLongerRemembers(t *testing.T) {
	d := Doc{View: time.Second, Gens: []Gen{Settled(1, []string{"a:1"})}}
	for n := uint64(2); n < Keep+5; n++ {
		d = d.With(Settled(n, []string{"a:1"}))
	}
	if len(d.Gens) != Keep {
		t.Fatalf("%d generations kept, want %d", len(d.Gens), Keep)
	}
	if d.Kept("g:x", "a:1", 1) {
		t.Fatal("a value older than every remembered generation is trusted")
	}
	if !d.Kept("g:x", "a:1", d.Gens[len(d.Gens)-1].N-1) {
		t.Fatal("a value of the generation just before the oldest remembered is refused")
	}
}

// A set of one node has no second place: a value at a key's second place
// is not kept across a generation that had one node, whose moves did not
// touch it (found by proxy/store's TestSimulateMembership, seed 79).
func TestKeptKnowsAOneNodeSetHasNoSecondPlace(t *testing.T) {
	d := Doc{View: time.Second, Gens: []Gen{Settled(1, []string{"a:1", "b:1"})}}
	for _, target := range [][]string{{"a:1"}, {"a:1", "b:1"}} {
		for {
			next, ok := Next(d.Current(), target)
			if !ok {
				break
			}
			d = d.With(next)
		}
	}
	for k := range 200 {
		key := fmt.Sprint("1~g:", k)
		at := d.Current().Read[ring.Pick(d.Current().Read, key)]
		if d.Kept(key, at, 1) {
			t.Fatalf("%s on %s: a second-place value from before a one-node generation is kept", key, at)
		}
	}
}
