package swarm

import "github.com/trakx/trakx/internal/bittorrent"

// view is one torrent's peers of one family: the list in its table slot
// and the arena its records live in. Positions are within the list.
// Growing a list can move every block of the arena: record pointers do
// not outlive a call.
type view[A bittorrent.IP] struct {
	a    *arena[A]
	tb   *table
	slot int
	fam  int
	seed uint64
}

func (v *view[A]) list() *list           { return &v.tb.slots[v.slot].lists[v.fam] }
func (v *view[A]) class() *uint8         { return &v.tb.slots[v.slot].classes[v.fam] }
func (v *view[A]) peers() []record[A]    { return v.a.peers(v.list()) }
func (v *view[A]) index() []uint32       { return v.a.index(v.list(), *v.class()) }
func (v *view[A]) at(pos int) *record[A] { return &v.a.recs[v.list().at+uint32(pos)] }

// find returns the position of the peer at ip and port, or -1.
func (v *view[A]) find(ip A, port uint16) int {
	if idx := v.index(); idx != nil {
		mask := uint64(len(idx) - 1)
		for i := endpointHash(ip, port, v.seed) & mask; ; i = (i + 1) & mask {
			if idx[i] == 0 {
				return -1
			}
			if p := v.at(int(idx[i] - 1)); p.ip == ip && p.port == port {
				return int(idx[i] - 1)
			}
		}
	}
	for i, p := range v.peers() {
		if p.port == port && p.ip == ip {
			return i
		}
	}
	return -1
}

// add appends a peer of kind k that is not in the list and returns its
// position, or false, changing nothing, when the list is full and cannot
// move to a bigger block (out of memory, or past the largest class).
func (v *view[A]) add(r record[A], k kind) (int, bool) {
	l := v.list()
	n := l.n()
	if n == classCap[*v.class()] {
		if !v.moveTo(*v.class() + 1) {
			return -1, false
		}
		l = v.list()
	}
	pos := int(n)
	*v.at(pos) = r
	l.setN(n + 1)
	if idx := v.index(); idx != nil {
		indexInsert(idx, endpointHash(r.ip, r.port, v.seed), uint32(pos))
	}
	return v.setKind(pos, downloader, k), true
}

// reserve makes room for extra more peers in at most one move, for a
// load that knows how many are coming. It is only a hint: when the room
// cannot be had, add finds out peer by peer.
func (v *view[A]) reserve(extra int) {
	need := uint64(v.list().n()) + uint64(extra)
	if need > uint64(classCap[*v.class()]) {
		v.moveTo(fitClass(uint32(min(need, uint64(classCap[maxClass])))))
	}
}

// moveTo moves the list to a block of the bigger class c at the arena's
// end; false, leaving the list where it was, when there is none to have.
func (v *view[A]) moveTo(c uint8) bool {
	if c > maxClass {
		return false
	}
	at, ok := v.a.alloc(v.a.blockSize(c), v.tb, v.fam, v.seed)
	if !ok {
		return false
	}
	// alloc may have compacted, which moves the list and may shrink its
	// block: read both only now.
	l, old := v.list(), *v.class()
	copy(v.a.recs[at:at+l.n()], v.a.peers(l))
	if old != 0 {
		v.a.release(old)
	}
	l.at, *v.class() = at, c
	v.a.rebuildIndex(l, c, v.seed)
	return true
}

// remove deletes the peer at pos.
func (v *view[A]) remove(pos int) {
	pos = v.setKind(pos, v.kindAt(pos), downloader)
	l := v.list()
	last := int(l.n()) - 1
	v.swap(pos, last)
	if idx := v.index(); idx != nil {
		p := v.at(last)
		indexDelete(idx, v.indexSlot(idx, p.ip, p.port, last), func(pos uint32) uint64 {
			p := v.at(int(pos))
			return endpointHash(p.ip, p.port, v.seed)
		})
	}
	l.setN(uint32(last))
	if last == 0 { // an empty list owns no block and points nowhere
		v.a.release(*v.class())
		*v.class(), l.at = 0, 0
	}
}

// kindAt is the kind of the peer at pos: the run it stands in.
func (v *view[A]) kindAt(pos int) kind {
	l := v.list()
	switch {
	case pos < int(l.seeders()):
		return seeder
	case pos < int(l.uploadOnly()):
		return partialSeed
	}
	return downloader
}

// setKind moves the peer at pos, of kind from, to the run of kind to, a
// run at a time, and returns its new position: each step swaps it with
// the end of its run and moves the boundary past it.
func (v *view[A]) setKind(pos int, from, to kind) int {
	if from == to {
		return pos
	}
	l := v.list()
	s, u := int(l.seeders()), int(l.uploadOnly())
	for ; from > to; from-- { // towards the downloaders, at the end
		if from == seeder {
			s--
			v.swap(pos, s)
			pos = s
		} else {
			u--
			v.swap(pos, u)
			pos = u
		}
	}
	for ; from < to; from++ { // towards the seeders, at the start
		if from == downloader {
			v.swap(pos, u)
			pos = u
			u++
		} else {
			v.swap(pos, s)
			pos = s
			s++
		}
	}
	l.set(l.n(), uint32(s), uint32(u-s))
	return pos
}

// swap exchanges two peers, keeping the index right.
func (v *view[A]) swap(i, j int) {
	if i == j {
		return
	}
	p, q := v.at(i), v.at(j)
	if idx := v.index(); idx != nil {
		si, sj := v.indexSlot(idx, p.ip, p.port, i), v.indexSlot(idx, q.ip, q.port, j)
		idx[si], idx[sj] = uint32(j+1), uint32(i+1)
	}
	*p, *q = *q, *p
}

// indexSlot is where the index holds position pos, the peer at ip and port.
func (v *view[A]) indexSlot(idx []uint32, ip A, port uint16, pos int) int {
	mask := uint64(len(idx) - 1)
	for i := endpointHash(ip, port, v.seed) & mask; ; i = (i + 1) & mask {
		if idx[i] == uint32(pos+1) {
			return int(i)
		}
	}
}

// indexDelete empties index slot i, moving later entries of its probe run
// back so that every entry stays reachable from its home slot.
func indexDelete(idx []uint32, i int, hashAt func(pos uint32) uint64) {
	mask := len(idx) - 1
	for j := (i + 1) & mask; idx[j] != 0; j = (j + 1) & mask {
		home := int(hashAt(idx[j]-1)) & mask
		// The entry at j may fill the hole at i when its home is not in
		// the cyclic range (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			idx[i] = idx[j]
			i = j
		}
	}
	idx[i] = 0
}

// expire removes every peer last seen more than ttl seconds before now,
// keeping the order of the rest, and returns how many of each kind went
// (gone[seeder] and so on); the index, if any, is rebuilt when any went.
func (v *view[A]) expire(now uint16, ttl uint32) (gone [3]uint32) {
	l := v.list()
	recs := v.peers()
	s, u := l.seeders(), l.uploadOnly()
	w := uint32(0)
	for r := range recs {
		if age(now, recs[r].seen) > ttl {
			switch {
			case uint32(r) < s:
				gone[seeder]++
			case uint32(r) < u:
				gone[partialSeed]++
			default:
				gone[downloader]++
			}
			continue
		}
		recs[w] = recs[r]
		w++
	}
	l.set(w, s-gone[seeder], u-s-gone[partialSeed])
	if w < uint32(len(recs)) && w > 0 {
		v.a.rebuildIndex(l, *v.class(), v.seed)
	}
	return gone
}
