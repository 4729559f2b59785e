package swarm

import (
	"slices"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// SnapshotPeer is one stored peer as a copy of the store holds it: Walk
// hands it out, Restore takes it back, and package database keeps it in a
// file in between. Unlike bittorrent.Peer4 and Peer6, a peer as sent to
// clients, it says whether it seeds and when it was last seen.
type SnapshotPeer[A bittorrent.IP] struct {
	IP     A
	Port   uint16
	Seeder bool
	// Partial is a partial seed (BEP 21): data left, none of it wanted.
	// Seeder wins over it.
	Partial  bool
	LastSeen uint32 // unix seconds
}

// SnapshotPeer4 and SnapshotPeer6 are the stored peers of each family.
type (
	SnapshotPeer4 = SnapshotPeer[[4]byte]
	SnapshotPeer6 = SnapshotPeer[[16]byte]
)

// Torrent is one torrent's whole state, copied out of the store.
type Torrent struct {
	Hash       bittorrent.InfoHash
	Downloaded uint32
	Peers4     []SnapshotPeer4 // seeders first, then partial seeds, then downloaders
	Peers6     []SnapshotPeer6
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
			l4, l6 := &sl.lists[ipv4], &sl.lists[ipv6]
			t.Peers4 = exportPeers(t.Peers4[:0], rest4[:l4.n()], l4, c.now)
			t.Peers6 = exportPeers(t.Peers6[:0], rest6[:l6.n()], l6, c.now)
			rest4, rest6 = rest4[l4.n():], rest6[l6.n():]
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

// exportPeers appends the peers of a list l, copied out (recs), as Walk
// hands them out.
func exportPeers[A bittorrent.IP](dst []SnapshotPeer[A], recs []record[A], l *list, now instant) []SnapshotPeer[A] {
	dst = slices.Grow(dst, len(recs))
	s, u := l.seeders(), l.uploadOnly()
	for i, r := range recs {
		i := uint32(i)
		dst = append(dst, SnapshotPeer[A]{IP: r.ip, Port: r.port, Seeder: i < s, Partial: i >= s && i < u, LastSeen: now.unix - age(now.tick(), r.seen)})
	}
	return dst
}
