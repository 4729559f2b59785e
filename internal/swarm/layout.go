package swarm

// This file is the store's memory layout, all of it, as opentracker's
// trackerlogic.h is its: the constants, the structs that lie in memory and
// their sizes. The other files work on these and define none of them.
//
//	Store
//	 └ shards [1024]shard                 by the keyed info hash's top 10 bits
//	     shard: mu | table | arena4 | arena6 | seeders, leechers per family
//
//	table.slots []slot, off the Go heap: open addressing, Robin Hood, at most 7/8 full
//	     slot (52 bytes, no pointer):
//	     | hash 20 | downloaded 4 | lists[ipv4] 12 | lists[ipv6] 12 | classes 2 | dist 1 | pad 1 |
//	     list: | at 4 | n 21 bits, seeders 21, partial 21, 1 spare |  records [at, at+n) of the family's arena
//
//	arena4.recs []record[[4]byte] (arena6: [16]byte), off the Go heap:
//	     | block | garbage | block | block | ... | block |    free    |
//	     0                                        used    len(recs)
//	     block of class c: | classCap[c] records: seeders, partial seeds, downloaders | index, if classCap[c] >= 48 |
//	     record (8 bytes; 20 for IPv6): | ip 4 | port 2 | seen 2 |
//	     index: indexSlots(classCap[c]) uint32 positions+1, rounded up to whole records
//
// Bytes a peer. A peer costs its record, plus its share of its block's
// unused room (classes are 1.25x apart: up to a fifth of the block), of
// the arena's garbage (at most an eighth of what is live, then compacted)
// and of its torrent's slot (52 bytes over a table 7/12 to 7/8 full after
// growing by 1.5x). For 10M IPv4 peers in 1M torrents of 10 (test/memory.sh):
//
//	record                                      8
//	block room (10 peers fill class 9 exactly)  0
//	garbage (an eighth of 8 at most)            0 .. 1
//	slot: 52 / (977 of 1531 slots full) / 10    8.1   (977 torrents a shard)
//	                                            ------
//	                                            16.1 .. 17.1, and the process's own:
//	                                            18.3 measured (RSS, docs/benchmarks.md)
//
// A swarm of 48 peers or more adds its index, 8 to 16 bytes a peer; an IPv6
// peer costs 12 bytes more than an IPv4 one; a torrent of one peer costs
// its slot (about 80 bytes) and one record.

import (
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/trakx/trakx/internal/bittorrent"
)

// MaxPeerTTL is the longest Config.PeerTTL the store keeps time for: a
// peer's last-seen time is stored as seconds modulo 2^16 (18 hours), which
// must cover a TTL and the sweep interval after it.
const MaxPeerTTL = 12 * time.Hour

// shardBits spreads torrents over enough locks that two request workers
// rarely meet on one.
const (
	shardBits  = 10
	shardCount = 1 << shardBits
)

// shards are a store's shards, picked by the keyed info hash's top
// shardBits.
type shards [shardCount]shard

// shard is one lock's worth of the store: its torrents' table, an arena
// of peers per family, and counts that Stats adds up.
type shard struct {
	mu       sync.Mutex
	table    table
	arena4   arena[[4]byte]
	arena6   arena[[16]byte]
	seeders  [2]int // per family
	leechers [2]int
	// Keeps two shards' locks off one cache line.
	_ [64]byte
}

// table is a shard's torrents: open addressing with Robin Hood insertion
// and backward-shift deletion, so no tombstones and short probes even when
// seven eighths full. Slots move on insert and delete: positions are valid
// only until the next one.
type table struct {
	slots []slot // off the Go heap
	count int
}

// slot is one torrent in a shard's table: 52 bytes, no pointer.
type slot struct {
	hash       bittorrent.InfoHash
	downloaded uint32
	lists      [2]list  // by family: ipv4, ipv6
	classes    [2]uint8 // each list's block size class; 0: no block
	// dist is 1 + how far the slot is from its home position; 0 marks an
	// empty slot. Robin Hood hashing keeps it small.
	dist uint8
}

// family indexes a torrent's two lists (slot.lists, slot.classes) and a
// shard's counts.
const (
	ipv4 = 0
	ipv6 = 1
)

// Table sizing: a table grows by half when an insert would make it more
// than maxLoadNum/maxLoadDen full, and is never smaller than minTableSize.
const (
	maxLoadNum, maxLoadDen = 7, 8
	minTableSize           = 8
	// A probe this long means the keyed hash is not spreading (or the
	// table is too full): grow rather than go on.
	maxDist = 250
)

// list is where one torrent's peers of one family live: records
// [at, at+n) of the family's arena, in three runs: the first seeders of
// them seeders, the next partial of them partial seeds (BEP 21: data left,
// but wanting no more), the rest downloaders. A peer's kind is where it
// stands, as a seeder's always was: the record has no bit to spare, the
// list has. Its three counts share 64 bits, 21 bits each, which bounds a
// list at maxListPeers (maxClass's block is the biggest that fits).
type list struct {
	at     uint32
	counts [2]uint32 // n | seeders<<21 | partial<<42, low word first; see n, seeders, partial
}

// countBits is the width of each of a list's counts.
const countBits = 21

// maxListPeers is the most peers one torrent holds of one family.
const maxListPeers = 1<<countBits - 1

func (l *list) word() uint64 { return uint64(l.counts[0]) | uint64(l.counts[1])<<32 }

// n is how many peers the list holds.
func (l *list) n() uint32 { return l.counts[0] & maxListPeers }

// seeders is how many of them are seeders: the first ones.
func (l *list) seeders() uint32 { return uint32(l.word()>>countBits) & maxListPeers }

// partial is how many are partial seeds: those after the seeders.
func (l *list) partial() uint32 { return uint32(l.word()>>(2*countBits)) & maxListPeers }

// uploadOnly is where the downloaders start: seeders and partial seeds
// come before it, and want nothing from anyone.
func (l *list) uploadOnly() uint32 { return l.seeders() + l.partial() }

// set stores the three counts, each at most maxListPeers.
func (l *list) set(n, seeders, partial uint32) {
	w := uint64(n) | uint64(seeders)<<countBits | uint64(partial)<<(2*countBits)
	l.counts = [2]uint32{uint32(w), uint32(w >> 32)}
}

func (l *list) setN(n uint32) { l.set(n, l.seeders(), l.partial()) }

// kind is what a peer is to its swarm, and which run of its list it
// stands in: ordered so that a peer moves between neighbouring runs one
// step at a time (view.setKind).
type kind uint8

const (
	downloader  kind = iota // data left, and wants it
	partialSeed             // data left, wants none of it (BEP 21's paused)
	seeder                  // no data left
)

// arena holds the peers of one family in one shard: blocks of records,
// one per list, handed out from its start.
type arena[A bittorrent.IP] struct {
	recs []record[A] // off the Go heap
	used uint32      // records handed out; [used, len(recs)) is free
	live uint32      // records in blocks that lists own; the rest is garbage
	// touched bounds the records written since their pages were last
	// handed back: past it, recs holds only pages the kernel has not
	// mapped (or zeroes).
	touched uint32
}

// record is one stored peer: 8 bytes for IPv4, 20 for IPv6. Whether it is
// a seeder is where it stands in its list; whether it is public is derived
// from its address when needed.
type record[A bittorrent.IP] struct {
	ip   A
	port uint16
	seen uint16 // seconds of the store's clock modulo 2^16 (instant.tick)
}

// The sizes drawn above, checked by the compiler: a change that moves
// them does not build until this file is changed with it.
var (
	_ [8]byte  = [unsafe.Sizeof(record[[4]byte]{})]byte{}
	_ [20]byte = [unsafe.Sizeof(record[[16]byte]{})]byte{}
	_ [12]byte = [unsafe.Sizeof(list{})]byte{}
	_ [52]byte = [unsafe.Sizeof(slot{})]byte{}
)

// Block size classes, about 1.25x apart: classCap[c] peers (1, 2, ... 8,
// 10, 12, 15, 18, 22, 27, ... 1,753,501). Class 0 is no block at all.
var classCap = func() (caps [maxClass + 1]uint32) {
	for c := 1; c <= maxClass; c++ {
		caps[c] = max(caps[c-1]+1, uint32(uint64(caps[c-1])*5/4))
	}
	return caps
}()

// maxClass is the biggest class, the biggest whose block a list can
// count (maxListPeers): classCap[64] is 1,753,501 peers. A test checks it.
const maxClass = 64

// fitClass is the smallest class that holds n peers.
func fitClass(n uint32) uint8 {
	c, _ := slices.BinarySearch(classCap[:], n)
	return uint8(c)
}

// A block of indexedFrom peers or more carries a hash index after its
// records: below that, a scan of the block is quicker than a probe.
const indexedFrom = 48

// indexSlots is the size of a block's position index: a power of two, at
// least twice its capacity, so probes stay short.
func indexSlots(capacity uint32) uint32 {
	if capacity < indexedFrom {
		return 0
	}
	n := uint32(1)
	for n < 2*capacity {
		n <<= 1
	}
	return n
}

// blockSize is the records a block of class c takes: its peers, then its
// index, if any, rounded up to whole records.
func (a *arena[A]) blockSize(c uint8) uint32 {
	capacity := classCap[c]
	recSize := uint32(unsafe.Sizeof(record[A]{}))
	return capacity + (indexSlots(capacity)*4+recSize-1)/recSize
}

// maxRecords bounds an arena: positions are uint32, and its bytes must
// fit an int.
const maxRecords = min(1<<32-1, math.MaxInt/20)
