package frontend

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestTakeSlot: goroutines racing for slots never push the count past
// the cap; an eviction that frees a slot lets a taker in; one that frees
// none refuses it.
func TestTakeSlot(t *testing.T) {
	const max, takers = 8, 64
	var open, most, taken atomic.Int64
	evict := func() bool { // closes a connection: its slot comes back
		if open.Load() == 0 {
			return false
		}
		open.Add(-1)
		return true
	}
	var wg sync.WaitGroup
	for range takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if TakeSlot(&open, max, evict) {
					taken.Add(1)
					if n := open.Load(); n > most.Load() {
						most.Store(n)
					}
				}
			}
		}()
	}
	wg.Wait()
	if most.Load() > max || open.Load() > max || taken.Load() == 0 {
		t.Fatalf("at most %d open, %d at the end, %d taken; cap %d", most.Load(), open.Load(), taken.Load(), max)
	}
	open.Store(max)
	if TakeSlot(&open, max, func() bool { return false }) || open.Load() != max {
		t.Fatalf("a slot taken at the cap with nothing to evict: %d open", open.Load())
	}
}
