package swarm

import (
	"github.com/trakx/trakx/internal/bittorrent"
)

// Shards is how many parts a store's torrents are spread over, each with
// its own lock and memory; ShardOf tells which part a torrent is in.
const Shards = shardCount

// ShardOf is the shard that holds, or would hold, the torrent with hash h.
func (s *Store) ShardOf(h *bittorrent.InfoHash) int { return int(s.hash(h) >> (64 - shardBits)) }

// ShardSize counts what a load will give a shard, torrent by torrent, so
// that LoadShard sizes its memory once, exactly, rather than step by step
// as the load goes. A load may give more (or less) than it counted.
type ShardSize struct {
	torrents int
	records  [2]uint64 // per family, in blocks as restoring makes them
}

// Add counts a torrent with peers4 and peers6 peers (those it will keep).
func (z *ShardSize) Add(peers4, peers6 int) {
	z.torrents++
	if peers4 > 0 {
		z.records[ipv4] += uint64((*arena[[4]byte])(nil).blockSize(fitClass(uint32(min(peers4, int(classCap[maxClass]))))))
	}
	if peers6 > 0 {
		z.records[ipv6] += uint64((*arena[[16]byte])(nil).blockSize(fitClass(uint32(min(peers6, int(classCap[maxClass]))))))
	}
}

// A ShardLoad fills one shard of a store that is not serving yet, as a
// load from a file does: Restore without a lock or a clock reading per
// torrent, and into memory sized and mapped in once. Each ShardLoad is
// used by one goroutine; loads of different shards may run at once, which
// is how a load uses every core. A shard's torrents given together, rather
// than spread among the others', keep its memory in the caches.
type ShardLoad struct {
	s        *Store
	sh       *shard
	at       restoreClock
	torrents int
	peers    int
}

// LoadShard starts loading shard i, sized for size, with Restore's cutoff
// and now. The shard stays locked until Done.
func (s *Store) LoadShard(i int, size ShardSize, cutoff, now uint32) *ShardLoad {
	sh := &s.shards[i]
	sh.mu.Lock()
	l := &ShardLoad{s: s, sh: sh, at: s.restoreClock(cutoff, now)}
	// Sizing is a hint: what cannot be had here is asked for again, step
	// by step, as the torrents come.
	if want := size.torrents * maxLoadDen / maxLoadNum; size.torrents > 0 && want >= len(sh.table.slots) {
		if sh.table.resize(max(minTableSize, want+1), s.hash) {
			populate(sh.table.slots)
		}
	}
	presize(&sh.arena4, size.records[ipv4])
	presize(&sh.arena6, size.records[ipv6])
	return l
}

// presize grows an arena to have room for records more.
func presize[A bittorrent.IP](a *arena[A], records uint64) {
	want := uint64(a.used) + records
	if records == 0 || want > maxRecords {
		return
	}
	if want > uint64(len(a.recs)) && !a.grow(int(want)) {
		return
	}
	populate(a.recs[a.used:want])
}

// Add is Restore of a torrent of the shard (ShardOf). It returns how many
// peers it kept, and ErrOutOfMemory, having kept what fitted, when memory
// ran out.
func (l *ShardLoad) Add(t *Torrent) (kept int, err error) {
	hv := l.s.hash(&t.Hash)
	if l.s.shardOf(hv) != l.sh {
		panic("swarm: ShardLoad.Add of a torrent of another shard")
	}
	kept, created, err := l.s.restoreTorrent(l.sh, t, hv, l.at)
	if created {
		l.torrents++
	}
	l.peers += kept
	return kept, err
}

// Keeps tells whether a load keeps a peer last seen at lastSeen with port
// (repeats aside), given LoadShard's cutoff and now: what a ShardSize
// should count.
func Keeps(lastSeen uint32, port uint16, cutoff, now uint32) bool {
	return lastSeen >= restoreCutoff(cutoff, now) && port != 0
}

// Done ends the load of the shard and unlocks it. Later calls do nothing.
func (l *ShardLoad) Done() {
	if l.sh == nil {
		return
	}
	l.s.totals.torrents.Add(int64(l.torrents))
	l.s.totals.peers.Add(int64(l.peers))
	l.sh.mu.Unlock()
	l.sh = nil
}
