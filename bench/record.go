package bench

import (
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Operation kinds of the workload.
const (
	opPost    = iota // GET /v1/posts/{id}
	opList           // GET /v1/users/{id}/posts?limit=…
	opProfile        // GET /v1/users/{id}
	opBust           // GET /v1/posts/{id}?cb={random}: a cache-busting query string
	opMissing        // GET /v1/posts/{id} of a post that does not exist: an id scan
	opEdit           // PUT /v1/posts/{id}
	opCreate         // POST /v1/users/{id}/posts
	numOps
)

var opNames = [numOps]string{"post", "list", "profile", "bust", "missing", "edit", "create"}

func isRead(op int) bool { return op <= opMissing }

// isMixRead is a read of the normal mix, not of an attack.
func isMixRead(op int) bool { return op <= opProfile }

// Latencies are recorded in microseconds, from 1 µs to 10 minutes, to three
// significant digits (0.1% resolution).
const (
	histMin     = 1
	histMax     = int64(10 * time.Minute / time.Microsecond)
	histSigFigs = 3
)

func newHist() *hdr.Histogram { return hdr.New(histMin, histMax, histSigFigs) }

// newCoarseHist is for the diagnostic distributions (service time, wait,
// one second of the timeline): two digits (1%) at an eighth of the memory,
// since the timeline keeps one for every second of the run.
func newCoarseHist() *hdr.Histogram { return hdr.New(histMin, histMax, 2) }

func recordMicros(h *hdr.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	h.RecordValue(min(max(us, histMin), histMax))
}

// recorder is a run's measurements, shared by its workers under mu. One
// recorder rather than one per worker: a worker's histograms are about
// 1.3 MB, and with 128 connections per target the workers' recorders were
// 170 MB, allocated as each run began and missing the CPU caches at every
// request. Per-second figures go to the shared timeline once a second.
type recorder struct {
	mu      sync.Mutex
	tl      *timeline
	latency [numOps]*hdr.Histogram // from the scheduled time to the answer
	service *hdr.Histogram         // from the send to the answer, all ops
	wait    *hdr.Histogram         // from the scheduled time to the send, all ops
	// mixHits is the latency of the mix's reads (post, list, profile)
	// that the cache answered as hits: what an attack beside the mix
	// must not slow down.
	mixHits *hdr.Histogram
	count   [numOps]int64
	errs    [numOps]map[string]int64
	cache   [numOutcomes]int64
	checked [numChecks]int64
	stale   [numChecks]int64
	// staleExamples are the first stale reads of the run, described.
	staleExamples []string
	okBytes       [numOps]int64 // answer body bytes of successful requests
	ok            [numOps]int64

	sec    int // the second cur belongs to
	cur    secondStats
	curLat *hdr.Histogram
}

// maxStaleExamples bounds the stale reads described in a report.
const maxStaleExamples = 10

func newRecorder(tl *timeline) *recorder {
	r := &recorder{tl: tl, service: newCoarseHist(), wait: newCoarseHist(), mixHits: newHist(), curLat: newCoarseHist(), sec: -1}
	for i := range r.latency {
		r.latency[i] = newHist()
		r.errs[i] = make(map[string]int64)
	}
	return r
}

// result is what one request produced.
type result struct {
	op        int
	scheduled time.Time
	sent      time.Time
	done      time.Time
	errKind   string // "" for success
	outcome   int
	check     int // checkItem… or -1 when the answer was not judged
	stale     bool
	staleWhy  string // for the report's examples
	bytes     int
}

func (r *recorder) record(res *result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := res.done.Sub(res.scheduled)
	recordMicros(r.latency[res.op], lat)
	recordMicros(r.service, res.done.Sub(res.sent))
	recordMicros(r.wait, res.sent.Sub(res.scheduled))
	r.count[res.op]++
	if res.errKind == "" {
		r.okBytes[res.op] += int64(res.bytes)
		r.ok[res.op]++
	}
	if res.errKind != "" {
		r.errs[res.op][res.errKind]++
	}
	if isRead(res.op) && res.errKind == "" {
		r.cache[res.outcome]++
		if res.outcome == outcomeHit && isMixRead(res.op) {
			recordMicros(r.mixHits, lat)
		}
	}
	if res.check >= 0 {
		r.checked[res.check]++
		if res.stale {
			r.stale[res.check]++
			if len(r.staleExamples) < maxStaleExamples {
				r.staleExamples = append(r.staleExamples, res.staleWhy)
			}
		}
	}

	// Answers reach the lock a little out of order: one of the second
	// before, once the next has begun, counts in the next.
	if sec := int(res.done.Sub(r.tl.start) / time.Second); sec > r.sec {
		r.flush()
		r.sec = sec
	}
	r.cur.Requests++
	if res.errKind != "" {
		r.cur.Errors++
	}
	if isRead(res.op) && res.errKind == "" {
		r.cur.Reads++
		switch res.outcome {
		case outcomeHit:
			r.cur.Hits++
		case outcomeNone:
		default:
			r.cur.Forwarded++
		}
	}
	if res.stale {
		r.cur.Stale++
	}
	recordMicros(r.curLat, lat)
	r.tl.done.Add(1)
	if res.errKind != "" {
		r.tl.errors.Add(1)
	}
}

// flush hands the current second to the timeline; r.mu is held, or the
// workers are done.
func (r *recorder) flush() {
	if r.sec < 0 || r.cur.Requests == 0 {
		return
	}
	r.tl.add(r.sec, r.cur, r.curLat)
	r.cur = secondStats{}
	r.curLat.Reset()
}

// secondStats are the counts of one second of the run (by completion time).
type secondStats struct {
	Requests  int64 `json:"requests"`
	Errors    int64 `json:"errors"`
	Reads     int64 `json:"reads"`
	Hits      int64 `json:"hits"`
	Forwarded int64 `json:"forwarded"` // reads a cache said it forwarded
	Stale     int64 `json:"stale"`
}

// timeline is the run's per-second view, shared by all workers, plus the
// counters the live progress line reads.
type timeline struct {
	start  time.Time
	done   atomic.Int64
	errors atomic.Int64

	mu      sync.Mutex
	seconds []secondStats
	lat     []*hdr.Histogram
	sofar   *hdr.Histogram // every flushed latency, for the progress line
}

func newTimeline(start time.Time) *timeline {
	return &timeline{start: start, sofar: newCoarseHist()}
}

func (t *timeline) add(sec int, s secondStats, lat *hdr.Histogram) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.seconds) <= sec {
		t.seconds = append(t.seconds, secondStats{})
		t.lat = append(t.lat, nil)
	}
	a := &t.seconds[sec]
	a.Requests += s.Requests
	a.Errors += s.Errors
	a.Reads += s.Reads
	a.Hits += s.Hits
	a.Forwarded += s.Forwarded
	a.Stale += s.Stale
	if t.lat[sec] == nil {
		t.lat[sec] = newCoarseHist()
	}
	t.lat[sec].Merge(lat)
	t.sofar.Merge(lat)
}

// p99LastSecond is the 99th percentile of the last whole second before
// now, -1 if nothing finished in it (or it is not flushed yet).
func (t *timeline) p99LastSecond(now time.Time) time.Duration {
	sec := int(now.Sub(t.start)/time.Second) - 1
	t.mu.Lock()
	defer t.mu.Unlock()
	if sec < 0 || sec >= len(t.lat) || t.lat[sec] == nil || t.lat[sec].TotalCount() == 0 {
		return -1
	}
	return time.Duration(t.lat[sec].ValueAtQuantile(99)) * time.Microsecond
}

// p99SoFar is the 99th percentile of the latencies flushed so far.
func (t *timeline) p99SoFar() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sofar.TotalCount() == 0 {
		return -1
	}
	return time.Duration(t.sofar.ValueAtQuantile(99)) * time.Microsecond
}
