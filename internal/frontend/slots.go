package frontend

import "sync/atomic"

// TakeSlot takes one of max connection slots counted in open, calling
// evict to make room when none is free; false if none can be had. The
// count never exceeds max: a slot is taken by compare and swap, and evict
// must give the slot of the connection it closes back at once. Tries are
// bounded: others may take the slot an eviction freed.
func TakeSlot(open *atomic.Int64, max int64, evict func() bool) bool {
	for range 4 {
		for {
			n := open.Load()
			if n >= max {
				break
			}
			if open.CompareAndSwap(n, n+1) {
				return true
			}
		}
		if !evict() {
			return false
		}
	}
	return false
}
