package swarm

import (
	"cmp"
	"slices"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Peer is a stored peer as Walk hands it out and Restore takes it back.
type Peer[A bittorrent.IP] struct {
	IP       A
	Port     uint16
	Seeder   bool
	LastSeen uint32 // unix seconds
}

// Peer4 and Peer6 are the stored peers of each family.
type (
	Peer4 = Peer[[4]byte]
	Peer6 = Peer[[16]byte]
)

// Torrent is one torrent's whole state, copied out of the store.
type Torrent struct {
	Hash       bittorrent.InfoHash
	Downloaded uint32
	Peers4     []Peer4 // seeders first
	Peers6     []Peer6
}

// WalkStats describe a finished Walk.
type WalkStats struct {
	// LongestLock is the longest a shard was locked while being copied:
	// the most any request could have waited on the walk.
	LongestLock time.Duration
}

// walkCopy is one shard's torrents, copied under its lock.
type walkCopy struct {
	slots  []slot
	peers4 []record[[4]byte]
	peers6 []record[[16]byte]
	now    instant
}

// Walk calls fn for every torrent. Each shard's torrents are copied out
// under its lock, which is all the lock is held for; fn runs after it is
// released, so neither fn nor anything it waits on holds up requests. The
// Torrent and its slices are reused: fn must not keep them. Walk stops at
// the first error fn returns and returns it.
func (s *Store) Walk(fn func(*Torrent) error) (WalkStats, error) {
	var st WalkStats
	var c walkCopy
	var t Torrent
	for i := range s.shards {
		locked := time.Now()
		s.shards[i].copyOut(&c, s.clock)
		st.LongestLock = max(st.LongestLock, time.Since(locked))
		rest4, rest6 := c.peers4, c.peers6
		for k := range c.slots {
			sl := &c.slots[k]
			t.Hash, t.Downloaded = sl.hash, sl.downloaded
			t.Peers4 = exportPeers(t.Peers4[:0], rest4[:sl.lists[ipv4].n], sl.lists[ipv4].seeders, c.now)
			t.Peers6 = exportPeers(t.Peers6[:0], rest6[:sl.lists[ipv6].n], sl.lists[ipv6].seeders, c.now)
			rest4, rest6 = rest4[sl.lists[ipv4].n:], rest6[sl.lists[ipv6].n:]
			if err := fn(&t); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// copyOut copies the shard's torrents and their peers, in table order.
func (sh *shard) copyOut(c *walkCopy, clock func() instant) {
	c.slots, c.peers4, c.peers6 = c.slots[:0], c.peers4[:0], c.peers6[:0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c.now = clock()
	// Grown once to the shard's size, not doubled by appends: a save's
	// memory is this copy, and one swarm of millions can fill a shard.
	c.slots = slices.Grow(c.slots, sh.table.count)
	c.peers4 = slices.Grow(c.peers4, int(sh.seeders[ipv4]+sh.leechers[ipv4]))
	c.peers6 = slices.Grow(c.peers6, int(sh.seeders[ipv6]+sh.leechers[ipv6]))
	for i := range sh.table.slots {
		sl := &sh.table.slots[i]
		if sl.dist == 0 {
			continue
		}
		c.slots = append(c.slots, *sl)
		c.peers4 = append(c.peers4, sh.arena4.peers(&sl.lists[ipv4])...)
		c.peers6 = append(c.peers6, sh.arena6.peers(&sl.lists[ipv6])...)
	}
}

func exportPeers[A bittorrent.IP](dst []Peer[A], recs []record[A], seeders uint32, now instant) []Peer[A] {
	dst = slices.Grow(dst, len(recs))
	for i, r := range recs {
		dst = append(dst, Peer[A]{IP: r.ip, Port: r.port, Seeder: uint32(i) < seeders, LastSeen: now.unix - age(now.tick(), r.seen)})
	}
	return dst
}

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

// keeps tells whether a restore keeps p, repeats aside.
func keeps[A bittorrent.IP](p *Peer[A], at restoreClock) bool {
	return p.LastSeen >= at.cutoff && p.Port != 0
}

func restoreInto[A bittorrent.IP](sh *shard, v *view[A], peers []Peer[A], at restoreClock) (kept int, err error) {
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
		if _, ok := v.add(record[A]{ip: p.IP, port: p.Port, seen: at.seen(p.LastSeen)}, p.Seeder); !ok {
			err = ErrOutOfMemory
			break
		}
		sh.count(v.fam, p.Seeder, 1)
		kept++
	}
	if l, c := v.list(), v.class(); l.n == 0 && *c != 0 { // room was made, but none fitted
		v.a.release(*c)
		*c, l.at = 0, 0
	}
	return kept, err
}
