package fleet

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// slowAnswer is the latency a drill's report counts requests above.
const slowAnswer = 2 * time.Second

// loadReport counts a load run's answers, reads and writes apart.
type loadReport struct {
	mu    sync.Mutex
	kinds map[string]*kindReport
}

type kindReport struct {
	requests int
	status   map[int]int // 0: no answer (transport error)
	slow     int         // answered after slowAnswer
	notJSON  int         // error answers without the JSON error shape
	slowest  time.Duration
}

func (r *loadReport) kind(name string) *kindReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kinds[name]
	if k == nil {
		k = &kindReport{status: map[int]int{}}
		r.kinds[name] = k
	}
	return k
}

func (r *loadReport) record(name string, status int, took time.Duration, contentType string, body []byte) {
	k := r.kind(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	k.requests++
	k.status[status]++
	if took > slowAnswer {
		k.slow++
	}
	k.slowest = max(k.slowest, took)
	if status >= 400 && !(strings.HasPrefix(contentType, "application/json") && strings.Contains(string(body), `{"error":{"code":`)) {
		k.notJSON++
	}
}

// only reports whether every answer of kind name had one of the statuses.
func (r *loadReport) only(name string, statuses ...int) bool {
	k := r.kind(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	for st, n := range k.status {
		ok := false
		for _, want := range statuses {
			ok = ok || st == want
		}
		if n > 0 && !ok {
			return false
		}
	}
	return true
}

func (r *loadReport) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, name := range []string{"read", "write"} {
		k := r.kinds[name]
		if k == nil {
			continue
		}
		var sts []int
		for st := range k.status {
			sts = append(sts, st)
		}
		sort.Ints(sts)
		fmt.Fprintf(&b, "%ss: %d (", name, k.requests)
		for i, st := range sts {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%d: %d", st, k.status[st])
		}
		fmt.Fprintf(&b, "), over %s: %d, slowest %s, errors not in JSON: %d; ", slowAnswer, k.slow, k.slowest.Round(time.Millisecond), k.notJSON)
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// load sends reads (GET of reads, in turn) and writes (PUT of writes, in
// turn) through HAProxy at fixed rates until stop is closed, each request
// on its own goroutine, so that slow answers do not slow the schedule
// (open loop). It returns when every request has been answered.
func (c *client) load(stop <-chan struct{}, reads, writes []string, token string, readRate, writeRate float64) *loadReport {
	r := &loadReport{kinds: map[string]*kindReport{}}
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	send := func(kind, method, path, body string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, "http://"+c.front+path, rd)
		if err != nil {
			c.t.Error(err)
			return
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
		}
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			r.record(kind, 0, time.Since(start), "", nil)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.record(kind, resp.StatusCode, time.Since(start), resp.Header.Get("Content-Type"), b)
	}
	var wg sync.WaitGroup
	readTick := time.NewTicker(time.Duration(float64(time.Second) / readRate))
	writeTick := time.NewTicker(time.Duration(float64(time.Second) / writeRate))
	defer readTick.Stop()
	defer writeTick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			wg.Wait()
			hc.CloseIdleConnections()
			return r
		case <-readTick.C:
			path := reads[i%len(reads)]
			wg.Go(func() { send("read", "GET", path, "") })
		case <-writeTick.C:
			path, body := writes[i%len(writes)], fmt.Sprintf(`{"body":"load %d"}`, i)
			wg.Go(func() { send("write", "PUT", path, body) })
		}
	}
}
