package swarm

import (
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/offheap"
)

// The table's type, its slots and its load limits are in layout.go; here
// is the hashing that finds, places and removes slots.

// empty tells that the torrent has no peer left: its slot is to go.
func (t *slot) empty() bool { return t.lists[ipv4].n() == 0 && t.lists[ipv6].n() == 0 }

// home is where a hash's probe starts: the top bits of a multiply, which
// works for any table size.
func (tb *table) home(hv uint64) int {
	return int((uint64(uint32(hv)) * uint64(len(tb.slots))) >> 32)
}

// find returns the position of the torrent with hash h, or -1.
func (tb *table) find(h *bittorrent.InfoHash, hv uint64) int {
	if tb.count == 0 {
		return -1
	}
	i := tb.home(hv)
	for d := uint8(1); ; d++ {
		s := &tb.slots[i]
		if s.dist < d { // empty, or a slot nearer its home than h would be
			return -1
		}
		if s.hash == *h {
			return i
		}
		if i++; i == len(tb.slots) {
			i = 0
		}
	}
}

// insert adds an empty torrent that is not in the table and returns its
// position, or -1, changing nothing, when the table must grow and cannot
// (out of memory). hashOf recomputes the keyed hash of a stored torrent
// when the table grows.
func (tb *table) insert(h *bittorrent.InfoHash, hv uint64, hashOf func(*bittorrent.InfoHash) uint64) int {
	if (tb.count+1)*maxLoadDen > len(tb.slots)*maxLoadNum {
		if !tb.resize(max(minTableSize, len(tb.slots)*3/2), hashOf) {
			return -1
		}
	}
	for {
		if at := tb.place(slot{hash: *h}, hv); at >= 0 {
			tb.count++
			return at
		}
		if !tb.resize(len(tb.slots)*3/2, hashOf) {
			return -1
		}
	}
}

// place puts s into the table by Robin Hood: it takes the place of any
// slot richer (nearer its home) than itself, which then moves on. It
// returns where s landed, or -1 (and changes nothing) when a probe would
// pass maxDist.
func (tb *table) place(s slot, hv uint64) int {
	i, landed := tb.home(hv), -1
	s.dist = 1
	if tb.longestProbe(i) >= maxDist {
		return -1
	}
	for {
		cur := &tb.slots[i]
		if cur.dist == 0 {
			*cur = s
			if landed < 0 {
				landed = i
			}
			return landed
		}
		if cur.dist < s.dist {
			s, *cur = *cur, s
			if landed < 0 {
				landed = i
			}
		}
		s.dist++
		if i++; i == len(tb.slots) {
			i = 0
		}
	}
}

// longestProbe is the largest distance any slot in the run starting at i
// would reach after one more insert there: the run's distances grow by at
// most one each.
func (tb *table) longestProbe(i int) int {
	longest := 0
	for k := 0; k < len(tb.slots); k++ {
		s := &tb.slots[i]
		if s.dist == 0 {
			return longest
		}
		longest = max(longest, int(s.dist)+1, k+2)
		if i++; i == len(tb.slots) {
			i = 0
		}
	}
	return longest
}

// remove deletes the torrent at i, shifting the run after it back by one.
func (tb *table) remove(i int) {
	for {
		next := i + 1
		if next == len(tb.slots) {
			next = 0
		}
		if tb.slots[next].dist <= 1 {
			tb.slots[i] = slot{}
			tb.count--
			return
		}
		tb.slots[i] = tb.slots[next]
		tb.slots[i].dist--
		i = next
	}
}

// resize moves every torrent into a table of size slots, or of more if a
// probe would grow too long in that one. When the memory cannot be had it
// returns false and the table is as it was.
func (tb *table) resize(size int, hashOf func(*bittorrent.InfoHash) uint64) bool {
	old := tb.slots
	for {
		slots, err := offheap.Make[slot](size)
		if err != nil {
			tb.slots = old
			return false
		}
		tb.slots = slots
		if tb.rehash(old, hashOf) {
			break
		}
		offheap.Free(slots)
		size = size * 3 / 2
	}
	offheap.Free(old)
	return true
}

func (tb *table) rehash(old []slot, hashOf func(*bittorrent.InfoHash) uint64) bool {
	for i := range old {
		if old[i].dist != 0 && tb.place(old[i], hashOf(&old[i].hash)) < 0 {
			return false
		}
	}
	return true
}

// shrinkToFit gives back most of a table that has lost most of its
// torrents; a table that cannot be had smaller stays as it is.
func (tb *table) shrinkToFit(hashOf func(*bittorrent.InfoHash) uint64) {
	switch {
	case tb.count == 0:
		offheap.Free(tb.slots)
		tb.slots = nil
	case len(tb.slots) > minTableSize && tb.count*4 < len(tb.slots):
		tb.resize(max(minTableSize, tb.count*2), hashOf)
	}
}

func (tb *table) free() {
	offheap.Free(tb.slots)
	*tb = table{}
}
