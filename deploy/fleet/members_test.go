package fleet

import (
	"math"
	"net/http"
	"strings"
	"testing"
)

func TestParseMemcachedAnswer(t *testing.T) {
	body := `{"generation":7,"phase":"dual-write","read":["127.0.0.1:1","127.0.0.1:2"],
		"write":[["127.0.0.1:1","127.0.0.1:2"],["127.0.0.1:1","127.0.0.1:2","127.0.0.1:3"]],
		"desired":["127.0.0.1:1","127.0.0.1:2","127.0.0.1:3"],
		"nodes":[{"node":"127.0.0.1:3","up":false,"failing_for_seconds":4.5,"member":false}],"leading":true}`
	s, err := parseMemcachedAnswer(http.StatusOK, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if s.Generation != 7 || s.Phase != "dual-write" || len(s.Write) != 2 || len(s.Write[1]) != 3 || !s.Leading ||
		len(s.Nodes) != 1 || s.Nodes[0].Up || s.Nodes[0].FailingForSeconds != 4.5 || s.Nodes[0].Member {
		t.Fatalf("parsed %+v", s)
	}
	if s.SettledOn(s.Read) {
		t.Error("a dual-write generation counts as settled")
	}
	settled, err := parseMemcachedAnswer(http.StatusOK, []byte(`{"generation":9,"phase":"settled","read":["b:2","a:1"],"write":[["b:2","a:1"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	none, err := parseMemcachedAnswer(http.StatusOK, []byte(`{"generation":0,"phase":"none","read":[],"write":[],"desired":["a:1"],"nodes":[],"leading":true}`))
	if err != nil || none.Generation != 0 || none.SettledOn([]string{"a:1"}) {
		t.Errorf("before generation 1: %+v, %v", none, err)
	}
	if !settled.SettledOn([]string{"a:1", "b:2"}) || settled.SettledOn([]string{"a:1"}) {
		t.Errorf("SettledOn: read %v is {a:1 b:2}: %v, is {a:1}: %v", settled.Read,
			settled.SettledOn([]string{"a:1", "b:2"}), settled.SettledOn([]string{"a:1"}))
	}

	for _, c := range []struct {
		status int
		body   string
		want   string
	}{
		{409, `{"error":"the last node cannot be removed"}`, "409 Conflict: the last node cannot be removed"},
		{400, `{"error":{"code":"bad_node","message":"want host:port"}}`, "400 Bad Request: bad_node: want host:port"},
		{404, "404 page not found\n", "404 Not Found: 404 page not found"},
		{200, `{"generation":3,"phase":"settled","read":[],"write":[]}`, "without read or write sets"},
		{200, `not json`, "membership answer"},
	} {
		_, err := parseMemcachedAnswer(c.status, []byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d %s: error %v, want one with %q", c.status, c.body, err, c.want)
		}
	}
}

func TestMovedShare(t *testing.T) {
	abc := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	for _, c := range []struct {
		name string
		to   []string
		want float64
	}{
		{"same", abc, 0},
		{"one added", append(abc[:3:3], "127.0.0.1:4"), 1.0 / 4},
		{"one removed", abc[:2], 1.0 / 3},
		// A key stays only if 1 or 2 outranks both 3 and 9: half do.
		{"one replaced", []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:9"}, 1.0 / 2},
	} {
		if got := movedShare(abc, c.to); math.Abs(got-c.want) > 0.01 {
			t.Errorf("%s: moved share %.3f, want %.3f", c.name, got, c.want)
		}
	}
}
