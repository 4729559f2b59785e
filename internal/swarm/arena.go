package swarm

import (
	"slices"
	"sync"
	"unsafe"

	"github.com/trakx/trakx/internal/offheap"
)

// The arena's type, its blocks and their size classes are in layout.go;
// here is what hands blocks out and compacts them.

// peers are the records of l.
func (a *arena[A]) peers(l *list) []record[A] {
	n := l.n()
	if n == 0 {
		return nil // an empty list's at may point past a shrunk arena
	}
	return a.recs[l.at : l.at+n]
}

// index is the position index of l's block, or nil: slot values are
// positions + 1, 0 is empty.
func (a *arena[A]) index(l *list, c uint8) []uint32 {
	capacity := classCap[c]
	n := indexSlots(capacity)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&a.recs[l.at+capacity])), n)
}

// garbageAllowed is how much garbage an arena keeps before compacting: an
// eighth of what is live, and a little so small arenas are left alone.
func (a *arena[A]) garbageAllowed() uint32 { return a.live/8 + garbageSlack }

// garbageSlack is the little; a variable so that tests of compaction can
// make it happen at every turn.
var garbageSlack uint32 = 256

// alloc hands out a block of size records and returns where it starts, or
// false when the arena cannot grow (out of memory), having changed nothing
// but, perhaps, compacted. Compaction moves other blocks.
func (a *arena[A]) alloc(size uint32, tb *table, fam int, seed uint64) (uint32, bool) {
	if a.used-a.live > a.garbageAllowed() {
		a.slide(tb, fam, seed)
		// The freed pages go back to the kernel, but only those written
		// since they last went: past touched nothing is mapped. Handing
		// back the whole tail cost a madvise (and a TLB flush) at each
		// compaction, even where the garbage did not fill a page, as in
		// most of a growing store's small arenas. Keeping the pages the
		// next allocations will write saves their page faults too (7% of
		// the CPU under test/compare.sh's udp100k), but holds up to an
		// eighth more memory than what is live: 1.2 more bytes a peer
		// after a fill. The mapping itself shrinks only in a sweep, so
		// that a compaction for growth does not shrink it only for the
		// next allocation to grow it again.
		if a.touched > a.used {
			offheap.Release(a.recs[:a.touched], int(a.used))
			a.touched = a.used
		}
	}
	need := uint64(a.used) + uint64(size)
	if need > maxRecords {
		return 0, false
	}
	if need > uint64(len(a.recs)) && !a.grow(int(need)) {
		return 0, false
	}
	at := a.used
	a.used += size
	a.live += size
	a.touched = max(a.touched, a.used)
	return at, true
}

// grow makes room for need records: half as much again as now, so that
// growth is amortised, or, when that much cannot be had, just need.
func (a *arena[A]) grow(need int) bool {
	for _, n := range [2]int{min(max(need, len(a.recs)*3/2, 64), maxRecords), need} {
		if grown, err := offheap.Resize(a.recs, n); err == nil {
			a.recs = grown
			return true
		}
	}
	return false
}

// release gives up a block of class c; its space is garbage until the
// next compaction.
func (a *arena[A]) release(c uint8) { a.live -= a.blockSize(c) }

// compactScratch holds the (at, slot) pairs compaction sorts; pooled so
// that the request path, which compacts now and then, does not allocate.
var compactScratch = sync.Pool{New: func() any { return new([]uint64) }}

// compact slides every live block down to the start of the arena, in
// address order, shrinking each to the smallest class that holds its
// peers, and hands the freed pages back to the kernel: the sweep's.
func (a *arena[A]) compact(tb *table, fam int, seed uint64) {
	a.slide(tb, fam, seed)
	w := a.used
	offheap.Release(a.recs, int(w))
	a.touched = w
	switch {
	case w == 0:
		offheap.Free(a.recs)
		a.recs = nil
	case int(w) < len(a.recs)/2:
		// Give back address space too, not only memory: under an
		// address-space limit, what a sweep freed is room to grow again.
		if shrunk, err := offheap.Resize(a.recs, max(int(w)+int(w)/4, 64)); err == nil {
			a.recs = shrunk
		}
	}
}

// slide slides every live block down to the start of the arena, in
// address order, shrinking each to the smallest class that holds its
// peers. The records past the last block are left as they were.
func (a *arena[A]) slide(tb *table, fam int, seed uint64) {
	scratch := compactScratch.Get().(*[]uint64)
	order := (*scratch)[:0]
	for i := range tb.slots {
		if s := &tb.slots[i]; s.dist != 0 && s.classes[fam] != 0 {
			order = append(order, uint64(s.lists[fam].at)<<32|uint64(i))
		}
	}
	slices.Sort(order)
	var w uint32
	for _, o := range order {
		s := &tb.slots[uint32(o)]
		l := &s.lists[fam]
		n := l.n()
		c := fitClass(n)
		if c == 0 { // emptied by the sweep
			l.at, s.classes[fam] = 0, 0
			continue
		}
		size := a.blockSize(c)
		if c == s.classes[fam] {
			// The same block, slid down whole: its index holds positions
			// in the list, which do not change. Rebuilding every index
			// held a big swarm's lock for a second at each sweep.
			copy(a.recs[w:w+size], a.recs[l.at:l.at+size])
			l.at = w
		} else {
			copy(a.recs[w:w+n], a.recs[l.at:l.at+n])
			l.at, s.classes[fam] = w, c
			a.rebuildIndex(l, c, seed)
		}
		w += size
	}
	*scratch = order
	compactScratch.Put(scratch)
	a.used, a.live = w, w
}

// rebuildIndex fills l's position index, if its block has one, afresh.
func (a *arena[A]) rebuildIndex(l *list, c uint8, seed uint64) {
	idx := a.index(l, c)
	if idx == nil {
		return
	}
	clear(idx)
	for i, p := range a.peers(l) {
		indexInsert(idx, endpointHash(p.ip, p.port, seed), uint32(i))
	}
}

func (a *arena[A]) free() {
	offheap.Free(a.recs)
	*a = arena[A]{}
}

// indexInsert records that the peer hashing to hv stands at pos.
func indexInsert(idx []uint32, hv uint64, pos uint32) {
	mask := uint64(len(idx) - 1)
	for i := hv & mask; ; i = (i + 1) & mask {
		if idx[i] == 0 {
			idx[i] = pos + 1
			return
		}
	}
}
