// Package swarm is the in-memory swarm database: which peers are in which
// torrent, and the counts a scrape reports. It knows nothing of the wire.
package swarm

import (
	"encoding/binary"
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
	PeerTTL          time.Duration
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
	ErrTooManyPeers    = &bittorrent.ClientError{Message: "tracker is full: no new peers accepted now, try again later"}
	ErrTooManyTorrents = &bittorrent.ClientError{Message: "tracker is full: no new torrents accepted now, try again later"}
)

// totals are the store-wide counts the limits are checked against. They
// change only when a peer or torrent comes or goes, not on re-announces.
type totals struct {
	peers, torrents               atomic.Int64
	refusedPeers, refusedTorrents atomic.Uint64
}

// shardCount spreads torrents over enough locks that two request workers
// rarely meet on one. A power of two, so a hash picks a shard with a mask.
const shardCount = 1024

// Store is the swarm database. It is safe for concurrent use.
type Store struct {
	config atomic.Pointer[Config]
	totals totals
	shards [shardCount]shard
}

type shard struct {
	mu       sync.Mutex
	torrents map[bittorrent.InfoHash]*torrent
	seeders  int
	leechers int
	totals   *totals
	// Keeps two shards' locks off one cache line.
	_ [64]byte
}

type torrent struct {
	v4 peerList[[4]byte]
	// Most torrents have no IPv6 peer: their list costs a nil pointer.
	v6         *peerList[[16]byte]
	downloaded uint32
}

// noPeers6 stands in, read-only, for a torrent's missing IPv6 list.
var noPeers6 peerList[[16]byte]

// peers6 is the torrent's IPv6 list for reading.
func (t *torrent) peers6() *peerList[[16]byte] {
	if t.v6 == nil {
		return &noPeers6
	}
	return t.v6
}

// growPeers6 is the torrent's IPv6 list for writing, made if need be.
func (t *torrent) growPeers6() *peerList[[16]byte] {
	if t.v6 == nil {
		t.v6 = &peerList[[16]byte]{}
	}
	return t.v6
}

// dropEmptyPeers6 frees an IPv6 list that has lost its last peer.
func (t *torrent) dropEmptyPeers6() {
	if t.v6 != nil && len(t.v6.peers) == 0 {
		t.v6 = nil
	}
}

func (t *torrent) seeders() int  { return t.v4.seeders + t.peers6().seeders }
func (t *torrent) leechers() int { return t.v4.leechers() + t.peers6().leechers() }
func (t *torrent) empty() bool   { return len(t.v4.peers) == 0 && len(t.peers6().peers) == 0 }

// New returns an empty store.
func New(cfg Config) *Store {
	s := &Store{}
	for i := range s.shards {
		s.shards[i].torrents = make(map[bittorrent.InfoHash]*torrent)
		s.shards[i].totals = &s.totals
	}
	s.SetConfig(cfg)
	return s
}

// SetConfig replaces the reply settings; requests already under way finish
// with the old ones.
func (s *Store) SetConfig(cfg Config) { s.config.Store(&cfg) }

// Config returns the reply settings in use.
func (s *Store) Config() Config { return *s.config.Load() }

func (s *Store) shardFor(h *bittorrent.InfoHash) *shard {
	return &s.shards[binary.LittleEndian.Uint32(h[:4])&(shardCount-1)]
}

func unixNow() uint32 { return uint32(time.Now().Unix()) }

// Announce records the requesting peer and fills resp with the swarm's
// counts and a random choice of other peers. resp's peer buffers are reused.
func (s *Store) Announce(req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	cfg := s.config.Load()
	resp.Reset()
	resp.Interval = cfg.AnnounceInterval + time.Duration(rand.Int64N(int64(cfg.AnnounceInterval)/20+1))
	resp.MinInterval = cfg.MinInterval

	want := int(req.NumWant)
	if want < 0 {
		want = cfg.NumWantDefault
	}
	want = min(want, cfg.NumWantMax)
	if req.Event == bittorrent.EventStopped {
		want = 0
	}

	now := unixNow()
	seeder := req.Left == 0
	public := IsPublic(req.Addr)
	publicOnly := public && !cfg.PrivatePeers
	sh := s.shardFor(&req.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()

	t := sh.torrents[req.InfoHash]
	if t == nil {
		if req.Event == bittorrent.EventStopped {
			return nil
		}
		if s.totals.torrents.Load() >= cfg.MaxTorrents {
			s.totals.refusedTorrents.Add(1)
			return ErrTooManyTorrents
		}
		t = &torrent{}
		sh.torrents[req.InfoHash] = t
		s.totals.torrents.Add(1)
	}
	defer func() {
		if t.empty() {
			delete(sh.torrents, req.InfoHash)
			s.totals.torrents.Add(-1)
		}
	}()

	if req.Addr.Is4() {
		self, err := announceIn(sh, t, &t.v4, req.Addr.As4(), req, now, seeder, public, cfg.MaxPeers)
		if err != nil {
			return err
		}
		resp.Peers4 = appendPeers(publicOnly, resp.Peers4, &t.v4, want, self, seeder, req.WithPeerIDs)
		if req.BothFamilies {
			resp.Peers6 = appendPeers(publicOnly, resp.Peers6, t.peers6(), want-len(resp.Peers4), -1, seeder, req.WithPeerIDs)
		}
	} else {
		v6 := t.growPeers6()
		self, err := announceIn(sh, t, v6, req.Addr.As16(), req, now, seeder, public, cfg.MaxPeers)
		if err != nil {
			t.dropEmptyPeers6()
			return err
		}
		resp.Peers6 = appendPeers(publicOnly, resp.Peers6, v6, want, self, seeder, req.WithPeerIDs)
		t.dropEmptyPeers6()
		if req.BothFamilies {
			resp.Peers4 = appendPeers(publicOnly, resp.Peers4, &t.v4, want-len(resp.Peers6), -1, seeder, req.WithPeerIDs)
		}
	}
	resp.Complete = uint32(t.seeders())
	resp.Incomplete = uint32(t.leechers())
	return nil
}

// announceIn applies one announce to the peer list of the requester's
// family and returns the requester's position in it, or -1 when it left.
func announceIn[A bittorrent.IP](sh *shard, t *torrent, l *peerList[A], ip A, req *bittorrent.AnnounceRequest, now uint32, seeder, public bool, maxPeers int64) (int, error) {
	i := l.find(endpoint[A]{ip, req.Port})
	if req.Event == bittorrent.EventStopped {
		if i >= 0 {
			sh.forget(l.peers[i].Seeder)
			l.remove(i)
			sh.totals.peers.Add(-1)
		}
		return -1, nil
	}
	if i < 0 && sh.totals.peers.Load() >= maxPeers {
		sh.totals.refusedPeers.Add(1)
		return -1, ErrTooManyPeers
	}
	if req.Event == bittorrent.EventCompleted && (i < 0 || !l.peers[i].Seeder) {
		t.downloaded++
	}
	if i < 0 {
		sh.count(seeder, 1)
		sh.totals.peers.Add(1)
		return l.insert(Peer[A]{IP: ip, Port: req.Port, Seeder: seeder, Public: public, LastSeen: now, ID: req.PeerID}), nil
	}
	if l.peers[i].Seeder != seeder {
		sh.count(l.peers[i].Seeder, -1)
		sh.count(seeder, 1)
		i = l.setSeeder(i, seeder)
	}
	l.peers[i].LastSeen = now
	l.peers[i].ID = req.PeerID
	return i, nil
}

func (sh *shard) count(seeder bool, n int) {
	if seeder {
		sh.seeders += n
	} else {
		sh.leechers += n
	}
}

func (sh *shard) forget(seeder bool) { sh.count(seeder, -1) }

// appendPeers copies a window of the list into a reply. A seeder is sent
// leechers only: other seeders are of no use to it.
func appendPeers[A bittorrent.IP](publicOnly bool, dst []bittorrent.PeerOf[A], l *peerList[A], want, self int, seeder, withIDs bool) []bittorrent.PeerOf[A] {
	lo, start, count := l.window(want, self, seeder)
	for k, taken := 0, 0; k < count && taken < want; k++ {
		i := start + k
		if i >= lo+count {
			i -= count
		}
		p := &l.peers[i]
		if i == self || (publicOnly && !p.Public) {
			continue
		}
		dst = append(dst, bittorrent.PeerOf[A]{IP: p.IP, Port: p.Port})
		if withIDs {
			dst[len(dst)-1].ID = p.ID
		}
		taken++
	}
	return dst
}

// Scrape returns one torrent's counts; an unknown torrent has zeros.
func (s *Store) Scrape(h *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	sh := s.shardFor(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[*h]
	if t == nil {
		return bittorrent.ScrapeStats{}, nil
	}
	return bittorrent.ScrapeStats{
		Complete:   uint32(t.seeders()),
		Downloaded: t.downloaded,
		Incomplete: uint32(t.leechers()),
	}, nil
}

// Stats are the store's totals.
type Stats struct {
	Torrents int
	Seeders  int
	Leechers int
	// Announces refused because the store was full, since it was made.
	RefusedPeers    uint64
	RefusedTorrents uint64
}

// Peers is the number of peers of both kinds.
func (st Stats) Peers() int { return st.Seeders + st.Leechers }

// Stats adds up the shards' totals, taking each lock in turn.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Torrents += len(sh.torrents)
		st.Seeders += sh.seeders
		st.Leechers += sh.leechers
		sh.mu.Unlock()
	}
	st.RefusedPeers = s.totals.refusedPeers.Load()
	st.RefusedTorrents = s.totals.refusedTorrents.Load()
	return st
}

// Expire drops every peer silent for longer than the configured peer TTL,
// and every torrent left without peers. It holds one shard's lock at a time
// and yields between shards, so requests never wait on more than one shard.
func (s *Store) Expire() (removed int) {
	cutoff := unixNow() - uint32(s.config.Load().PeerTTL/time.Second)
	for i := range s.shards {
		removed += s.shards[i].expire(cutoff)
		runtime.Gosched()
	}
	return removed
}

func (sh *shard) expire(cutoff uint32) (removed int) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	defer func() { sh.totals.peers.Add(int64(-removed)) }()
	for h, t := range sh.torrents {
		s4, l4 := t.v4.expire(cutoff)
		var s6, l6 int
		if t.v6 != nil {
			s6, l6 = t.v6.expire(cutoff)
			t.dropEmptyPeers6()
		}
		sh.seeders -= s4 + s6
		sh.leechers -= l4 + l6
		removed += s4 + l4 + s6 + l6
		if t.empty() {
			delete(sh.torrents, h)
			sh.totals.torrents.Add(-1)
		}
	}
	return removed
}

// RunExpiry calls Expire every interval until stop is closed.
func (s *Store) RunExpiry(interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			s.Expire()
		}
	}
}
