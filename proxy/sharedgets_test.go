package proxy

import (
	"strconv"
	"sync"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"
)

// TestSharedGetsSeeEveryEarlierWrite: whatever round a read joins, it sees
// every value stored before the read was asked for (the property the
// read-after-write guarantee rests on), and only its own keys.
func TestSharedGetsSeeEveryEarlierWrite(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	m := newMetricSet("sharedgets-test")
	store, err := newL2(cfg, zap.NewNop(), m)
	if err != nil {
		t.Fatal(err)
	}
	gets := sharedGets{l2: store, m: m}
	direct := memcache.New(mc.Addr)
	shared := "sg:shared:" + t.Name()
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := "sg:" + t.Name() + ":" + strconv.Itoa(w)
			for i := range 100 {
				v := strconv.Itoa(i)
				if err := direct.Set(&memcache.Item{Key: own, Value: []byte(v)}); err != nil {
					errs <- err.Error()
					return
				}
				items, unavailable := gets.read([]string{own, shared})
				if unavailable {
					errs <- "unavailable"
					return
				}
				if it := items[own]; it == nil || string(it.Value) != v {
					errs <- own + ": stored " + v + " before the read, did not read it back"
					return
				}
				if len(items) > 2 {
					errs <- "items of other requests leaked in"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if m.sharedGets.Get() != 1600 {
		t.Fatalf("%d lookups counted, want 1600", m.sharedGets.Get())
	}
}
