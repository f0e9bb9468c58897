package ring

import (
	"fmt"
	"net"
	"testing"
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
