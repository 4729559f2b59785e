package swarm

import (
	"math/rand/v2"
	"net/netip"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Peer is one stored peer. It holds no pointer, so millions of them cost the
// garbage collector nothing to scan. Peers are kept per family, so an IPv4
// peer costs 32 bytes, not the 44 of an IPv6 one.
type Peer[A bittorrent.IP] struct {
	IP     A
	Port   uint16
	Seeder bool
	// Public is false for private, loopback, link-local and other
	// addresses that peers on the internet cannot reach.
	Public   bool
	LastSeen uint32 // unix seconds
	ID       bittorrent.PeerID
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// IsPublic reports whether peers on the internet can reach a.
func IsPublic(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

// Peer4 and Peer6 are the stored peers of each family.
type (
	Peer4 = Peer[[4]byte]
	Peer6 = Peer[[16]byte]
)

// endpoint is what identifies a peer within a torrent: its address and port.
type endpoint[A bittorrent.IP] struct {
	ip   A
	port uint16
}

func (p *Peer[A]) endpoint() endpoint[A] { return endpoint[A]{p.IP, p.Port} }

// A swarm gets a hash index only once a linear scan would cost more than a
// map lookup; most swarms have a handful of peers and never need one. The
// gap between the two bounds keeps a swarm near the line from rebuilding its
// index on every join and leave.
const (
	indexAbove = 48
	indexBelow = 24
)

// peerList holds one address family's peers of one torrent: seeders in
// peers[:seeders], leechers after them, so that a seeder can be sent
// leechers only without a scan.
type peerList[A bittorrent.IP] struct {
	peers   []Peer[A]
	seeders int
	index   map[endpoint[A]]int32
}

func (l *peerList[A]) leechers() int { return len(l.peers) - l.seeders }

// find returns the position of the peer at ep, or -1.
func (l *peerList[A]) find(ep endpoint[A]) int {
	if l.index != nil {
		if i, ok := l.index[ep]; ok {
			return int(i)
		}
		return -1
	}
	for i := range l.peers {
		if l.peers[i].Port == ep.port && l.peers[i].IP == ep.ip {
			return i
		}
	}
	return -1
}

func (l *peerList[A]) swap(i, j int) {
	if i == j {
		return
	}
	l.peers[i], l.peers[j] = l.peers[j], l.peers[i]
	if l.index != nil {
		l.index[l.peers[i].endpoint()] = int32(i)
		l.index[l.peers[j].endpoint()] = int32(j)
	}
}

// insert adds a peer that is not in the list yet and returns its position.
func (l *peerList[A]) insert(p Peer[A]) int {
	if len(l.peers) == cap(l.peers) {
		// Grow by a quarter, not append's doubling: most swarms stop
		// growing soon, and the slack of a doubled slice would be most of
		// the store's memory.
		grown := make([]Peer[A], len(l.peers), len(l.peers)+len(l.peers)/4+1)
		copy(grown, l.peers)
		l.peers = grown
	}
	l.peers = append(l.peers, p)
	i := len(l.peers) - 1
	if l.index != nil {
		l.index[p.endpoint()] = int32(i)
	} else if len(l.peers) > indexAbove {
		l.buildIndex()
	}
	if p.Seeder {
		l.swap(i, l.seeders)
		i = l.seeders
		l.seeders++
	}
	return i
}

// remove deletes the peer at position i.
func (l *peerList[A]) remove(i int) {
	if i < l.seeders {
		l.swap(i, l.seeders-1)
		i = l.seeders - 1
		l.seeders--
	}
	last := len(l.peers) - 1
	l.swap(i, last)
	if l.index != nil {
		delete(l.index, l.peers[last].endpoint())
	}
	l.peers = l.peers[:last]
	l.afterShrink()
}

// setSeeder moves the peer at i to the seeder or leecher part of the list
// and returns its new position.
func (l *peerList[A]) setSeeder(i int, seeder bool) int {
	switch {
	case seeder && i >= l.seeders:
		l.swap(i, l.seeders)
		i = l.seeders
		l.seeders++
	case !seeder && i < l.seeders:
		l.swap(i, l.seeders-1)
		i = l.seeders - 1
		l.seeders--
	}
	l.peers[i].Seeder = seeder
	return i
}

// expire removes every peer last seen before cutoff, keeping the order of
// the rest, and returns how many seeders and leechers it removed.
func (l *peerList[A]) expire(cutoff uint32) (seeders, leechers int) {
	w := 0
	keep := func(r int) {
		if l.peers[r].LastSeen < cutoff {
			if l.index != nil {
				delete(l.index, l.peers[r].endpoint())
			}
			return
		}
		if w != r {
			l.peers[w] = l.peers[r]
			if l.index != nil {
				l.index[l.peers[w].endpoint()] = int32(w)
			}
		}
		w++
	}
	for r := 0; r < l.seeders; r++ {
		keep(r)
	}
	seeders = l.seeders - w
	l.seeders = w
	for r := l.seeders + seeders; r < len(l.peers); r++ {
		keep(r)
	}
	leechers = len(l.peers) - w - seeders
	clear(l.peers[w:])
	l.peers = l.peers[:w]
	l.afterShrink()
	return seeders, leechers
}

func (l *peerList[A]) buildIndex() {
	l.index = make(map[endpoint[A]]int32, len(l.peers)*2)
	for i := range l.peers {
		l.index[l.peers[i].endpoint()] = int32(i)
	}
}

// afterShrink drops the index of a swarm that became small and gives back
// the memory of one that lost most of its peers.
func (l *peerList[A]) afterShrink() {
	n := len(l.peers)
	if l.index != nil && n < indexBelow {
		l.index = nil
	}
	if n == 0 {
		l.peers = nil
		return
	}
	if c := cap(l.peers); c > 32 && n < c/4 {
		shrunk := make([]Peer[A], n, 2*n)
		copy(shrunk, l.peers)
		l.peers = shrunk
	}
}

// window picks where a reply's peers come from: a run of up to want peers
// starting at a random position among the candidates, wrapping around, and
// skipping position skip (the requester). Candidates are all peers, or the
// leechers only when leechersOnly is set.
func (l *peerList[A]) window(want int, skip int, leechersOnly bool) (lo, start, count int) {
	if leechersOnly {
		lo = l.seeders
	}
	count = len(l.peers) - lo
	if count == 0 || want <= 0 {
		return lo, lo, 0
	}
	return lo, lo + rand.IntN(count), count
}
