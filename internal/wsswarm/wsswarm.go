// Package wsswarm keeps the swarms of WebSocket (WebTorrent) peers. They
// are apart from the UDP/HTTP store (package swarm) because the two kinds
// of peer cannot reach each other: a browser speaks WebRTC, not TCP or
// uTP. It knows nothing of the wire.
//
// The contract:
//   - A peer is its peer id within a swarm, and is reached through the
//     connection it announced on: a handle of the frontend's type C, which
//     the store only stores, compares and hands back. (Unlike the UDP/HTTP
//     store, peer ids are kept: the protocol routes answers by them.) The
//     WebSocket frontend names the instance for its connection type
//     (websocket.Swarms), and the daemon makes it and hands it over, as it
//     does the UDP/HTTP store. C is a type parameter, not an interface, so
//     that a peer holds one pointer and a relay calls no method through
//     an interface.
//   - A peer id belongs to the first live connection that announces it in a
//     swarm; another connection announcing it there is refused
//     (ErrPeerIDInUse) until the first leaves, so that nobody can take over
//     a peer's offers and answers.
//   - Announce adds or updates the peer and picks up to want other peers of
//     the swarm at random, never the announcer; stopped removes it. Leave
//     removes a peer whose connection closed; Expire removes peers silent
//     longer than a TTL. Empty swarms are dropped.
//   - Counts: complete (seeders), incomplete (leechers), and downloaded
//     (completed events from leechers), as in a scrape.
//   - Safe for concurrent use; one swarm's work holds one shard's lock.
package wsswarm

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// ErrPeerIDInUse refuses a second connection announcing a peer id that a
// live connection holds in that swarm: a client error, sent as the failure
// reason and counted as malformed.
var ErrPeerIDInUse = &bittorrent.ClientError{Message: "peer_id already announced on another connection in this swarm"}

const shards = 64

// Swarms are every WebSocket swarm.
type Swarms[C comparable] struct {
	shards [shards]shard[C]
}

type shard[C comparable] struct {
	mu     sync.Mutex
	swarms map[bittorrent.InfoHash]*swarm[C]
	// Totals kept as peers come and go, so that Stats walks nothing.
	peers, seeders int
	_              [24]byte
}

type swarm[C comparable] struct {
	peers      map[bittorrent.PeerID]*peer[C]
	list       []*peer[C] // the same peers, for picking at random
	complete   uint32
	downloaded uint32
}

type peer[C comparable] struct {
	id     bittorrent.PeerID
	conn   C
	seeder bool
	seen   int64 // unix seconds
	index  int   // in list
}

// New returns empty swarms.
func New[C comparable]() *Swarms[C] {
	s := &Swarms[C]{}
	for i := range s.shards {
		s.shards[i].swarms = map[bittorrent.InfoHash]*swarm[C]{}
	}
	return s
}

func (s *Swarms[C]) shardOf(h *bittorrent.InfoHash) *shard[C] {
	return &s.shards[(uint(h[0])|uint(h[7])<<8)%shards]
}

// Announce is one announce from conn. Seeder says whether the peer has the
// whole torrent; want is how many other peers to pick.
type Announce[C comparable] struct {
	InfoHash bittorrent.InfoHash
	PeerID   bittorrent.PeerID
	Conn     C
	Seeder   bool
	Event    bittorrent.Event
	Want     int
	Now      time.Time
}

// Announce records a and appends up to a.Want other peers' connections to
// picked, returning them and the swarm's figures after the announce.
func (s *Swarms[C]) Announce(a *Announce[C], picked []C) ([]C, bittorrent.ScrapeStats, error) {
	sh := s.shardOf(&a.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw := sh.swarms[a.InfoHash]
	var p *peer[C]
	if sw != nil {
		p = sw.peers[a.PeerID]
	}
	if p != nil && p.conn != a.Conn {
		return picked, sw.stats(), ErrPeerIDInUse
	}
	if a.Event == bittorrent.EventStopped {
		if p != nil {
			sh.remove(&a.InfoHash, sw, p)
		}
		if sw == nil {
			return picked, bittorrent.ScrapeStats{}, nil
		}
		return picked, sw.stats(), nil
	}
	if sw == nil {
		sw = &swarm[C]{peers: map[bittorrent.PeerID]*peer[C]{}}
		sh.swarms[a.InfoHash] = sw
	}
	if p == nil {
		p = &peer[C]{id: a.PeerID, conn: a.Conn, index: len(sw.list)}
		sw.peers[a.PeerID] = p
		sw.list = append(sw.list, p)
		sh.peers++
	}
	if a.Seeder && !p.seeder {
		sw.complete++
		sh.seeders++
		if a.Event == bittorrent.EventCompleted {
			sw.downloaded++
		}
	} else if !a.Seeder && p.seeder {
		sw.complete--
		sh.seeders--
	}
	p.seeder, p.seen = a.Seeder, a.Now.Unix()
	return sw.pick(p, a.Want, picked), sw.stats(), nil
}

// pick appends up to want peers other than self, at random, distinct.
func (sw *swarm[C]) pick(self *peer[C], want int, picked []C) []C {
	others := len(sw.list) - 1
	want = min(want, others)
	if want <= 0 {
		return picked
	}
	// A random start and a step coprime with the list's length visit
	// every peer once, in an order nobody can predict.
	n := len(sw.list)
	start, step := rand.IntN(n), coprimeStep(n)
	for i, taken := 0, 0; i < n && taken < want; i++ {
		q := sw.list[(start+i*step)%n]
		if q != self {
			picked = append(picked, q.conn)
			taken++
		}
	}
	return picked
}

// coprimeStep is a random step in 1..n-1 that shares no factor with n.
func coprimeStep(n int) int {
	if n <= 2 {
		return 1
	}
	for range 16 {
		if step := 1 + rand.IntN(n-1); gcd(step, n) == 1 {
			return step
		}
	}
	return 1
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// remove takes p out of sw, and sw out of the shard if it is left empty.
func (sh *shard[C]) remove(h *bittorrent.InfoHash, sw *swarm[C], p *peer[C]) {
	if p.seeder {
		sw.complete--
		sh.seeders--
	}
	sh.peers--
	last := sw.list[len(sw.list)-1]
	sw.list[p.index], last.index = last, p.index
	sw.list[len(sw.list)-1] = nil
	sw.list = sw.list[:len(sw.list)-1]
	delete(sw.peers, p.id)
	if len(sw.list) == 0 {
		delete(sh.swarms, *h)
	}
}

func (sw *swarm[C]) stats() bittorrent.ScrapeStats {
	return bittorrent.ScrapeStats{Complete: sw.complete, Incomplete: uint32(len(sw.list)) - sw.complete, Downloaded: sw.downloaded}
}

// Find is the connection of the peer id in the swarm, if it is there.
func (s *Swarms[C]) Find(h *bittorrent.InfoHash, id *bittorrent.PeerID) (conn C, ok bool) {
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sw := sh.swarms[*h]; sw != nil {
		if p := sw.peers[*id]; p != nil {
			return p.conn, true
		}
	}
	return conn, false
}

// Leave removes the peer id from the swarm if conn holds it: its
// connection closed.
func (s *Swarms[C]) Leave(h *bittorrent.InfoHash, id *bittorrent.PeerID, conn C) {
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sw := sh.swarms[*h]; sw != nil {
		if p := sw.peers[*id]; p != nil && p.conn == conn {
			sh.remove(h, sw, p)
		}
	}
}

// Scrape is a swarm's figures.
func (s *Swarms[C]) Scrape(h *bittorrent.InfoHash) bittorrent.ScrapeStats {
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sw := sh.swarms[*h]; sw != nil {
		return sw.stats()
	}
	return bittorrent.ScrapeStats{}
}

// Expire removes every peer not seen since before, and reports how many.
func (s *Swarms[C]) Expire(before time.Time) (removed int) {
	limit := before.Unix()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for h, sw := range sh.swarms {
			for j := len(sw.list) - 1; j >= 0; j-- {
				if p := sw.list[j]; p.seen < limit {
					sh.remove(&h, sw, p)
					removed++
				}
			}
		}
		sh.mu.Unlock()
	}
	return removed
}

// Stats are the totals over every swarm.
type Stats struct {
	Torrents, Seeders, Leechers int
}

// Stats adds up the shards' totals.
func (s *Swarms[C]) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Torrents += len(sh.swarms)
		st.Seeders += sh.seeders
		st.Leechers += sh.peers - sh.seeders
		sh.mu.Unlock()
	}
	return st
}

// Stall takes the lock that guards h's swarm and holds it until release is
// called: announces of h wait meanwhile, as they would behind a deadlock.
// It exists for tests of what must notice a wedged loop (the systemd
// watchdog), which have no other way to make one.
func (s *Swarms[C]) Stall(h *bittorrent.InfoHash) (release func()) {
	sh := s.shardOf(h)
	sh.mu.Lock()
	return sh.mu.Unlock
}
