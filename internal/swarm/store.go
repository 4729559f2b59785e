package swarm

import (
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Config is the part of the tracker's configuration that shapes replies.
// It can be swapped while the store serves (SIGHUP).
type Config struct {
	AnnounceInterval time.Duration
	MinInterval      time.Duration
	PeerTTL          time.Duration // at most MaxPeerTTL; longer counts as MaxPeerTTL
	NumWantDefault   int
	NumWantMax       int
	// The store refuses new peers and torrents beyond these, so that no
	// flood of announces can take more memory than planned; swarms
	// already there keep working.
	MaxPeers    int64
	MaxTorrents int64
	// PrivatePeers hands peers at private, loopback and link-local
	// addresses to every client. Without it they go only to clients at
	// such addresses themselves: to anyone else they are useless, and a
	// way to point strangers at a private network.
	PrivatePeers bool
}

// Refusals when the store is full.
var (
	ErrTooManyPeers    = &bittorrent.ClientError{Message: "tracker is full: no new peers accepted now, try again later", Kind: bittorrent.KindTrackerFull}
	ErrTooManyTorrents = &bittorrent.ClientError{Message: "tracker is full: no new torrents accepted now, try again later", Kind: bittorrent.KindTrackerFull}
	// ErrOutOfMemory refuses a newcomer that would need memory the
	// kernel will not give. The store stays as it was and goes on
	// serving the peers it holds.
	ErrOutOfMemory = &bittorrent.ClientError{Message: "tracker is full: out of memory, try again later", Kind: bittorrent.KindTrackerFull}
)

// totals are the store-wide counts the limits are checked against. They
// change only when a peer or torrent comes or goes, not on re-announces.
type totals struct {
	peers, torrents               atomic.Int64
	refusedPeers, refusedTorrents atomic.Uint64
	refusedMemory                 atomic.Uint64
}

// reserve counts one more in n unless that would pass limit: exact even
// when shards race for the last place.
func reserve(n *atomic.Int64, limit int64) bool {
	if n.Add(1) > limit {
		n.Add(-1)
		return false
	}
	return true
}

// Store is the swarm database. It is safe for concurrent use.
type Store struct {
	config   atomic.Pointer[Config]
	hashSeed maphash.Seed // keys the torrent hash: clients choose info hashes
	peerSeed uint64       // keys the big swarms' position index
	totals   *totals
	shards   *shards
	clock    func() instant // realClock but in tests
}

// New returns an empty store. Its memory lies outside the Go heap; Close
// gives it back at once, and it is given back anyway once the store is
// no longer reachable.
func New(cfg Config) *Store {
	s := &Store{hashSeed: maphash.MakeSeed(), peerSeed: rand.Uint64(), totals: &totals{}, shards: &shards{}, clock: realClock()}
	s.SetConfig(cfg)
	runtime.AddCleanup(s, (*shards).free, s.shards)
	return s
}

// Close frees the store's memory. The store must not be used afterwards.
func (s *Store) Close() { s.shards.free() }

// free gives back every shard's memory.
func (all *shards) free() {
	for i := range all {
		sh := &all[i]
		sh.mu.Lock()
		sh.table.free()
		sh.arena4.free()
		sh.arena6.free()
		sh.mu.Unlock()
	}
}

// SetConfig replaces the reply settings; requests already under way finish
// with the old ones.
func (s *Store) SetConfig(cfg Config) { s.config.Store(&cfg) }

// Config returns the reply settings in use.
func (s *Store) Config() Config { return *s.config.Load() }

// hash is the keyed hash of an info hash: its top bits pick the shard,
// its low ones the table slot.
func (s *Store) hash(h *bittorrent.InfoHash) uint64 { return maphash.Bytes(s.hashSeed, h[:]) }

// shardOf picks a shard by the hash's top bits; the table uses the low ones.
func (s *Store) shardOf(hv uint64) *shard { return &s.shards[hv>>(64-shardBits)] }

// view4 and view6 are the torrent at slot's peers of each family.
func (sh *shard) view4(s *Store, slot int) view[[4]byte] {
	return view[[4]byte]{a: &sh.arena4, tb: &sh.table, slot: slot, fam: ipv4, seed: s.peerSeed}
}

func (sh *shard) view6(s *Store, slot int) view[[16]byte] {
	return view[[16]byte]{a: &sh.arena6, tb: &sh.table, slot: slot, fam: ipv6, seed: s.peerSeed}
}

// count adds n to the shard's seeders or leechers (partial seeds are
// leechers) of family fam.
func (sh *shard) count(fam int, k kind, n int) {
	if k == seeder {
		sh.seeders[fam] += n
	} else {
		sh.leechers[fam] += n
	}
}

// Stats are the store's totals.
type Stats struct {
	Torrents int
	Seeders  int // of both families
	Leechers int
	// Of the seeders and leechers, those at IPv6 addresses.
	Seeders6  int
	Leechers6 int
	// Announces refused because the store was full, since it was made:
	// at Config.MaxPeers, at Config.MaxTorrents, or out of memory.
	RefusedPeers       uint64
	RefusedTorrents    uint64
	RefusedOutOfMemory uint64
}

// Peers is the number of peers of both kinds.
func (st Stats) Peers() int { return st.Seeders + st.Leechers }

// RefusedOutOfMemory is how many announces were refused because the
// store could not have the memory for them: Stats().RefusedOutOfMemory,
// without taking every shard's lock.
func (s *Store) RefusedOutOfMemory() uint64 { return s.totals.refusedMemory.Load() }

// Totals are the peers and torrents the store holds, the counts its
// limits are checked against, read without a lock.
func (s *Store) Totals() (peers, torrents int64) {
	return s.totals.peers.Load(), s.totals.torrents.Load()
}

// Stats adds up the shards' totals, taking each lock in turn.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Torrents += sh.table.count
		st.Seeders += sh.seeders[ipv4] + sh.seeders[ipv6]
		st.Leechers += sh.leechers[ipv4] + sh.leechers[ipv6]
		st.Seeders6 += sh.seeders[ipv6]
		st.Leechers6 += sh.leechers[ipv6]
		sh.mu.Unlock()
	}
	st.RefusedPeers = s.totals.refusedPeers.Load()
	st.RefusedTorrents = s.totals.refusedTorrents.Load()
	st.RefusedOutOfMemory = s.totals.refusedMemory.Load()
	return st
}
