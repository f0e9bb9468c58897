package ring

import (
	"fmt"
	"net"
	"testing"

	rendezvous "github.com/dgryski/go-rendezvous"
)

func TestAddingANodeMovesOnlyItsShare(t *testing.T) {
	three, err := New([]string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	four, err := New([]string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	moved, toNew := 0, 0
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("e:%d", i)
		a, _ := three.PickServer(k)
		b, _ := four.PickServer(k)
		if a.String() != b.String() {
			moved++
			if b.String() == "127.0.0.1:4" {
				toNew++
			}
		}
	}
	if moved != toNew {
		t.Fatalf("%d keys moved between old nodes; only moves to the new node are allowed", moved-toNew)
	}
	// About a quarter should move; a modulo hash would move about 75%.
	if moved < n/8 || moved > n*3/8 {
		t.Fatalf("moved %d of %d keys, want about a quarter", moved, n)
	}
}

func TestDownNodeIsNotReplaced(t *testing.T) {
	r, err := New([]string{"127.0.0.1:1", "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	k := "g:x"
	i := r.Node(k)
	if !r.SetDown(i, true) {
		t.Fatal("SetDown reported no change")
	}
	if _, err := r.PickServer(k); err != ErrNodeDown {
		t.Fatalf("PickServer on a down node: %v, want ErrNodeDown", err)
	}
	visited := 0
	r.Each(func(net.Addr) error { visited++; return nil })
	if visited != 1 {
		t.Fatalf("Each visited %d nodes, want only the 1 that is up", visited)
	}
}

// The second choice is another node, spread evenly, and the first choice
// is where go-rendezvous put keys (placement did not move when the ring
// stopped using it).
func TestSecondChoice(t *testing.T) {
	r, err := New([]string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	seconds := make([]int, 3)
	for i := range 3000 {
		k := fmt.Sprintf("g:%d", i)
		a, b := r.Node(k), r.Node("1~"+k)
		if a == b {
			t.Fatalf("%s: second choice %d is the first", k, b)
		}
		seconds[b]++
	}
	for n, c := range seconds {
		if c < 800 {
			t.Errorf("node %d is the second choice of %d of 3000 keys, want about 1000", n, c)
		}
	}
	// A rolling deploy runs old and new proxies side by side: the first
	// choice must be exactly where the ring put keys with go-rendezvous.
	nodes := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	old := rendezvous.New(nodes, hashString)
	for i := range 3000 {
		k := fmt.Sprintf("e:%d", i)
		if got, want := nodes[r.Node(k)], old.Lookup(k); got != want {
			t.Fatalf("%s on %s, go-rendezvous put it on %s", k, got, want)
		}
	}
	one, _ := New([]string{"127.0.0.1:1"})
	if one.Node("1~g:x") != 0 {
		t.Fatal("with one node the second choice is that node")
	}
}
