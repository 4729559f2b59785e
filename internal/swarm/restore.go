package swarm

import (
	"cmp"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Restore adds saved peers to a torrent, creating it if need be. Peers last
// seen before cutoff are dropped, as are peers with port 0 and repeats of a
// peer already present; a last-seen time in the future is taken as now.
// now is the present, in unix seconds, by the caller's clock: with
// MaxPeerTTL it bounds cutoff. The store keeps last-seen times as ages on
// its own clock.
// Restore may be called more than once for one torrent: the peers add up,
// downloaded is the largest given. It returns how many peers it kept. The
// store's limits do not apply: what was saved comes back, unless memory
// runs out, when Restore keeps what it could and returns ErrOutOfMemory.
// A load of a whole store goes quicker shard by shard (LoadShard).
func (s *Store) Restore(t *Torrent, cutoff, now uint32) (kept int, err error) {
	hv := s.hash(&t.Hash)
	sh := s.shardOf(hv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Ages are taken on the store's own reading, under the lock: now may
	// have been read a moment (and a second boundary) ago.
	kept, created, err := s.restoreTorrent(sh, t, hv, s.restoreClock(cutoff, now))
	if created {
		s.totals.torrents.Add(1)
	}
	s.totals.peers.Add(int64(kept))
	return kept, err
}

// restoreClock reads the store's clock for a restore with the caller's
// cutoff and now.
func (s *Store) restoreClock(cutoff, now uint32) restoreClock {
	in := s.clock()
	return restoreClock{cutoff: restoreCutoff(cutoff, now), unix: in.unix, tick: in.tick()}
}

// restoreCutoff is the caller's cutoff, or MaxPeerTTL before now if later.
func restoreCutoff(cutoff, now uint32) uint32 {
	return max(cutoff, now-min(now, uint32(MaxPeerTTL/time.Second))) // never wrapping, near 1970
}

// restoreTorrent is Restore into sh, whose lock the caller holds; created
// tells that the torrent is new to the store (and kept).
func (s *Store) restoreTorrent(sh *shard, t *Torrent, hv uint64, at restoreClock) (kept int, created bool, err error) {
	i := sh.table.find(&t.Hash, hv)
	if i < 0 {
		if i = sh.table.insert(&t.Hash, hv, s.hash); i < 0 {
			return 0, false, ErrOutOfMemory
		}
		created = true
	}
	v4, v6 := sh.view4(s, i), sh.view6(s, i)
	kept4, err4 := restoreInto(sh, &v4, t.Peers4, at)
	kept6, err6 := restoreInto(sh, &v6, t.Peers6, at)
	kept, err = kept4+kept6, cmp.Or(err4, err6)
	sl := &sh.table.slots[i]
	if sl.empty() { // every peer given had expired, or none fitted
		sh.table.remove(i)
		return 0, false, err
	}
	sl.downloaded = max(sl.downloaded, t.Downloaded)
	return kept, created, err
}

// restoreClock turns saved unix times into the store's ticks: a peer last
// seen at unix u is now-u seconds old, on any clock.
type restoreClock struct {
	cutoff, unix uint32
	tick         uint16
}

func (c restoreClock) seen(lastSeen uint32) uint16 {
	return c.tick - uint16(c.unix-min(lastSeen, c.unix))
}

// kind is what a saved peer is to its swarm.
func (p *SnapshotPeer[A]) kind() kind {
	switch {
	case p.Seeder:
		return seeder
	case p.Partial:
		return partialSeed
	}
	return downloader
}

// keeps tells whether a restore keeps p, repeats aside.
func keeps[A bittorrent.IP](p *SnapshotPeer[A], at restoreClock) bool {
	return p.LastSeen >= at.cutoff && p.Port != 0
}

func restoreInto[A bittorrent.IP](sh *shard, v *view[A], peers []SnapshotPeer[A], at restoreClock) (kept int, err error) {
	// Room for the peers that will be kept, not for those that expired:
	// a block sized for those would be garbage the arena compacts away.
	n := 0
	for i := range peers {
		if keeps(&peers[i], at) {
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	v.reserve(n)
	for i := range peers {
		p := &peers[i]
		if !keeps(p, at) || v.find(p.IP, p.Port) >= 0 {
			continue
		}
		k := p.kind()
		if _, ok := v.add(record[A]{ip: p.IP, port: p.Port, seen: at.seen(p.LastSeen)}, k); !ok {
			err = ErrOutOfMemory
			break
		}
		sh.count(v.fam, k, 1)
		kept++
	}
	if l, c := v.list(), v.class(); l.n() == 0 && *c != 0 { // room was made, but none fitted
		v.a.release(*c)
		*c, l.at = 0, 0
	}
	return kept, err
}
