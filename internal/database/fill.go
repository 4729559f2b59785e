package database

import (
	"sync"
	"sync/atomic"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/swarm"
)

// filler fills the store from a checked file, shard by shard.
type filler struct {
	body        []byte
	format      format
	store       *swarm.Store
	ix          *shardIndex
	cutoff, now uint32
	next        atomic.Int64  // the next shard to fill
	touched     atomic.Uint64 // keeps the records' first reads from being compiled away
}

// record is one torrent's record, as index checked it.
type record struct {
	hash  bittorrent.InfoHash
	c     counts
	peers []byte
}

// recordAt decodes the record whose info hash is at off.
func (fl *filler) recordAt(off uint64, r *record) {
	b := fl.body[off:]
	r.hash = bittorrent.InfoHash(b[:20])
	b = b[20:]
	r.c, b = fl.format.countsAt(b)
	r.peers = b[:r.c.bytes(fl.format.tail)]
}

// all fills every shard on n goroutines and adds what they counted to st.
func (fl *filler) all(n int, st *LoadStats) {
	stats := make([]LoadStats, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { fl.run(&stats[w]) })
	}
	wg.Wait()
	for _, s := range stats {
		st.Peers += s.Peers
		st.Expired += s.Expired
		st.NoMemory += s.NoMemory
	}
}

// run fills shards until none is left, counting into st.
func (fl *filler) run(st *LoadStats) {
	var t swarm.Torrent
	for {
		i := int(fl.next.Add(1) - 1)
		if i >= swarm.Shards {
			return
		}
		fl.shard(i, &t, st)
	}
}

// shard fills shard i: first it counts what the shard will hold, then
// restores its torrents into memory sized for that.
func (fl *filler) shard(i int, t *swarm.Torrent, st *LoadStats) {
	offs := fl.ix.at[fl.ix.from[i]:fl.ix.from[i+1]]
	if len(offs) == 0 {
		return
	}
	// The shard's records lie all over the file: a first look at each, in
	// a loop that waits on none, has the memory fetch them all at once
	// rather than one after another.
	var touch byte
	for _, off := range offs {
		touch |= fl.body[off]
	}
	fl.touched.Add(uint64(touch))
	var r record
	var size swarm.ShardSize
	for _, off := range offs {
		fl.recordAt(off, &r)
		n4 := int(r.c.family(false))
		size.Add(fl.kept(r.peers, n4, 4), fl.kept(r.peers[n4*(4+fl.format.tail):], int(r.c.family(true)), 16))
	}
	l := fl.store.LoadShard(i, size, fl.cutoff, fl.now)
	defer l.Done()
	for _, off := range offs {
		fl.recordAt(off, &r)
		fl.torrent(l, &r, t, st)
	}
}

// kept counts the peers of n records of addr-byte addresses at b that a
// load keeps, repeats aside.
func (fl *filler) kept(b []byte, n, addr int) (kept int) {
	size := addr + fl.format.tail
	for i := range n {
		port, lastSeen := decodeTail(b[i*size+addr:], fl.format.savedAt)
		if swarm.Keeps(lastSeen, port, fl.cutoff, fl.now) {
			kept++
		}
	}
	return kept
}

// torrent restores one torrent, a chunk at a time, each chunk of one kind:
// a whole torrent at once when it fits, so that its swarm is sized once.
func (fl *filler) torrent(l *swarm.ShardLoad, r *record, t *swarm.Torrent, st *LoadStats) {
	t.Hash, t.Downloaded = r.hash, r.c.downloaded
	t.Peers4, t.Peers6 = t.Peers4[:0], t.Peers6[:0]
	b := r.peers
	for g, group := range groups {
		addr := group.addrSize()
		size := addr + fl.format.tail
		for n := int(r.c.peers[g]); n > 0; {
			c := min(n, peersPerChunk-len(t.Peers4)-len(t.Peers6))
			n -= c
			for i := range c {
				p := b[i*size:]
				port, lastSeen := decodeTail(p[addr:], fl.format.savedAt)
				group.appendPeer(t, p[:addr], port, lastSeen)
			}
			b = b[c*size:]
			if len(t.Peers4)+len(t.Peers6) == peersPerChunk {
				restore(l, t, st)
			}
		}
	}
	restore(l, t, st)
}

// restore hands the peers decoded so far to the store.
func restore(l *swarm.ShardLoad, t *swarm.Torrent, st *LoadStats) {
	if len(t.Peers4)+len(t.Peers6) == 0 {
		return
	}
	k, err := l.Add(t)
	st.tally(t, k, err)
}
