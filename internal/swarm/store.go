package swarm

import (
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"sync"
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

// shardBits spreads torrents over enough locks that two request workers
// rarely meet on one.
const (
	shardBits  = 10
	shardCount = 1 << shardBits
)

// Store is the swarm database. It is safe for concurrent use.
type Store struct {
	config   atomic.Pointer[Config]
	hashSeed maphash.Seed // keys the torrent hash: clients choose info hashes
	peerSeed uint64       // keys the big swarms' position index
	totals   *totals
	shards   *shards
	clock    func() instant // realClock but in tests
}

type shards [shardCount]shard

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

func (s *Store) hash(h *bittorrent.InfoHash) uint64 { return maphash.Bytes(s.hashSeed, h[:]) }

// shardOf picks a shard by the hash's top bits; the table uses the low ones.
func (s *Store) shardOf(hv uint64) *shard { return &s.shards[hv>>(64-shardBits)] }

// instant is a reading of the store's clock. Last-seen times are kept on
// mono, whole seconds of the monotonic clock since the store was made,
// which a stepped wall clock cannot move; unix is read only to hand
// last-seen times out as unix times (Walk) and take them in (Restore).
// Announces and sweeps read the clock while they hold the shard's lock,
// so that a sweep never sees a peer stamped later than its own reading.
type instant struct{ mono, unix uint32 }

func (in instant) tick() uint16 { return tickOf(in.mono) }

// realClock starts mono at the wall clock's second boundaries, so that
// unix - mono stays the same from reading to reading (until the wall clock
// is stepped) and a peer's last-seen unix time reads the same in every
// Walk.
func realClock() func() instant {
	start := time.Now()
	phase := start.Sub(start.Truncate(time.Second)) // into the wall clock's second
	return func() instant {
		t := time.Now()
		return instant{mono: uint32((t.Sub(start) + phase) / time.Second), unix: uint32(t.Unix())}
	}
}

func (sh *shard) view4(s *Store, slot int) view[[4]byte] {
	return view[[4]byte]{a: &sh.arena4, tb: &sh.table, slot: slot, fam: ipv4, seed: s.peerSeed}
}

func (sh *shard) view6(s *Store, slot int) view[[16]byte] {
	return view[[16]byte]{a: &sh.arena6, tb: &sh.table, slot: slot, fam: ipv6, seed: s.peerSeed}
}

func (sh *shard) count(fam int, seeder bool, n int) {
	if seeder {
		sh.seeders[fam] += n
	} else {
		sh.leechers[fam] += n
	}
}

// numWant is how many peers a reply carries at most.
func numWant(req *bittorrent.AnnounceRequest, cfg *Config) int {
	if req.Event == bittorrent.EventStopped {
		return 0
	}
	want := int(req.NumWant)
	if want < 0 {
		want = cfg.NumWantDefault
	}
	if req.PeerLimit > 0 {
		want = min(want, int(req.PeerLimit))
	}
	return min(want, cfg.NumWantMax)
}

// Announce records the requesting peer and fills resp with the swarm's
// counts and a random choice of other peers. resp's peer buffers are reused.
func (s *Store) Announce(req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	cfg := s.config.Load()
	resp.Reset()
	resp.Interval = cfg.AnnounceInterval + time.Duration(rand.Int64N(int64(cfg.AnnounceInterval)/20+1))
	resp.MinInterval = cfg.MinInterval
	want := numWant(req, cfg)
	seeder := req.Left == 0
	publicOnly := !cfg.PrivatePeers && IsPublic(req.Addr)

	hv := s.hash(&req.InfoHash)
	sh := s.shardOf(hv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.clock().tick()
	i := sh.table.find(&req.InfoHash, hv)
	if i < 0 {
		if req.Event == bittorrent.EventStopped {
			return nil
		}
		if !reserve(&s.totals.torrents, cfg.MaxTorrents) {
			s.totals.refusedTorrents.Add(1)
			return ErrTooManyTorrents
		}
		if i = sh.table.insert(&req.InfoHash, hv, s.hash); i < 0 {
			s.totals.torrents.Add(-1)
			s.totals.refusedMemory.Add(1)
			return ErrOutOfMemory
		}
	}

	var err error
	v4, v6 := sh.view4(s, i), sh.view6(s, i)
	reply := replyTo{want: want, seeder: seeder, publicOnly: publicOnly, both: req.BothFamilies}
	if req.Addr.Is4() {
		err = announceAndReply(s, sh, &v4, &v6, req.Addr.As4(), req, cfg, now, reply, &resp.Peers4, &resp.Peers6)
	} else {
		err = announceAndReply(s, sh, &v6, &v4, req.Addr.As16(), req, cfg, now, reply, &resp.Peers6, &resp.Peers4)
	}
	t := &sh.table.slots[i]
	if t.empty() {
		sh.table.remove(i)
		s.totals.torrents.Add(-1)
		return err
	}
	if err == nil {
		resp.Complete, resp.Incomplete = t.counts()
	}
	return err
}

// counts are a torrent's seeders and leechers over both families.
func (t *slot) counts() (seeders, leechers uint32) {
	for _, l := range &t.lists {
		seeders += l.seeders
		leechers += l.n - l.seeders
	}
	return seeders, leechers
}

// replyTo is what shapes the peers of one reply.
type replyTo struct {
	want                     int
	seeder, publicOnly, both bool
}

// announceAndReply records the requester in its own family's list (own)
// and fills the reply with peers of its family, then, if asked, of the
// other one.
func announceAndReply[A, B bittorrent.IP](s *Store, sh *shard, own *view[A], other *view[B], ip A, req *bittorrent.AnnounceRequest, cfg *Config, now uint16,
	r replyTo, ownPeers *[]bittorrent.PeerOf[A], otherPeers *[]bittorrent.PeerOf[B]) error {
	self, err := announceIn(s, sh, own, ip, req, cfg, now)
	if err != nil {
		return err
	}
	*ownPeers = appendPeers(*ownPeers, own.peers(), own.list().seeders, r.want, self, r.seeder, r.publicOnly)
	if r.both {
		*otherPeers = appendPeers(*otherPeers, other.peers(), other.list().seeders, r.want-len(*ownPeers), -1, r.seeder, r.publicOnly)
	}
	return nil
}

// announceIn applies one announce to the requester's list and returns
// the requester's position in it, or -1 when it is not (or no longer) in.
func announceIn[A bittorrent.IP](s *Store, sh *shard, v *view[A], ip A, req *bittorrent.AnnounceRequest, cfg *Config, now uint16) (int, error) {
	t := &sh.table.slots[v.slot]
	pos := v.find(ip, req.Port)
	seeder := req.Left == 0
	if req.Event == bittorrent.EventStopped {
		if pos >= 0 {
			sh.count(v.fam, pos < int(v.list().seeders), -1)
			v.remove(pos)
			s.totals.peers.Add(-1)
		}
		return -1, nil
	}
	if pos < 0 {
		if !reserve(&s.totals.peers, cfg.MaxPeers) {
			s.totals.refusedPeers.Add(1)
			return -1, ErrTooManyPeers
		}
		pos, ok := v.add(record[A]{ip: ip, port: req.Port, seen: now}, seeder)
		if !ok {
			s.totals.peers.Add(-1)
			s.totals.refusedMemory.Add(1)
			return -1, ErrOutOfMemory
		}
		if req.Event == bittorrent.EventCompleted && seeder {
			t.downloaded++
		}
		sh.count(v.fam, seeder, 1)
		return pos, nil
	}
	wasSeeder := pos < int(v.list().seeders)
	if req.Event == bittorrent.EventCompleted && seeder && !wasSeeder {
		t.downloaded++
	}
	if wasSeeder != seeder {
		sh.count(v.fam, wasSeeder, -1)
		sh.count(v.fam, seeder, 1)
		pos = v.setSeeder(pos, seeder)
	}
	v.at(pos).seen = now
	return pos, nil
}

// Scrape returns one torrent's counts; an unknown torrent has zeros.
func (s *Store) Scrape(h *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	hv := s.hash(h)
	sh := s.shardOf(hv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.table.find(h, hv)
	if i < 0 {
		return bittorrent.ScrapeStats{}, nil
	}
	t := &sh.table.slots[i]
	seeders, leechers := t.counts()
	return bittorrent.ScrapeStats{Complete: seeders, Downloaded: t.downloaded, Incomplete: leechers}, nil
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

// Expire drops every peer silent for longer than the configured peer TTL
// and every torrent left without peers, then compacts each shard's memory.
// It holds one shard's lock at a time and yields between shards, so
// requests never wait on more than one shard.
func (s *Store) Expire() (removed int) {
	ttl := uint32(min(s.config.Load().PeerTTL, MaxPeerTTL) / time.Second)
	for i := range s.shards {
		n := s.shards[i].expire(s, ttl)
		s.totals.peers.Add(int64(-n))
		removed += n
		runtime.Gosched()
	}
	return removed
}

func (sh *shard) expire(s *Store, ttl uint32) (removed int) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.clock().tick() // under the lock: see instant
	for i := 0; i < len(sh.table.slots); {
		if sh.table.slots[i].dist == 0 {
			i++
			continue
		}
		v4, v6 := sh.view4(s, i), sh.view6(s, i)
		s4, l4 := v4.expire(now, ttl)
		s6, l6 := v6.expire(now, ttl)
		sh.seeders[ipv4] -= int(s4)
		sh.leechers[ipv4] -= int(l4)
		sh.seeders[ipv6] -= int(s6)
		sh.leechers[ipv6] -= int(l6)
		removed += int(s4 + l4 + s6 + l6)
		if sh.table.slots[i].empty() {
			// The slot now holds the next of its run, if any: look again.
			sh.table.remove(i)
			s.totals.torrents.Add(-1)
			continue
		}
		i++
	}
	sh.arena4.compact(&sh.table, ipv4, s.peerSeed)
	sh.arena6.compact(&sh.table, ipv6, s.peerSeed)
	sh.table.shrinkToFit(s.hash)
	return removed
}

// RunExpiry calls Expire every interval() until stop is closed. It looks
// at interval() once a second, so that a new one (a reload) applies at
// once rather than after the old interval runs out.
func (s *Store) RunExpiry(interval func() time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			if now.Sub(last) >= interval() {
				s.Expire()
				last = now
			}
		}
	}
}
