package swarm

import (
	"github.com/trakx/trakx/internal/bittorrent"
	"net/netip"
)

// Shards is how many shards the store has; a snapshot walks them one by one.
const Shards = shardCount

// ForEachTorrent calls fn for every torrent of one shard, holding that
// shard's lock, and only that one, for the whole walk: requests for other
// shards go on meanwhile. fn must not keep the slices it is given.
func (s *Store) ForEachTorrent(shard int, fn func(h bittorrent.InfoHash, downloaded uint32, v4 []Peer4, v6 []Peer6)) {
	sh := &s.shards[shard]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for h, t := range sh.torrents {
		fn(h, t.downloaded, t.v4.peers, t.peers6().peers)
	}
}

// Restore adds saved peers to a torrent, creating it if need be. Peers last
// seen before cutoff are dropped, as are repeats of a peer already present;
// a last-seen time after now is taken as now. Restore may be called more
// than once for one torrent: the peers add up, downloaded is the largest
// given. It returns how many peers it kept.
func (s *Store) Restore(h *bittorrent.InfoHash, downloaded uint32, v4 []Peer4, v6 []Peer6, cutoff, now uint32) int {
	sh := s.shardFor(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[*h]
	if t == nil {
		t = &torrent{}
	}
	t.downloaded = max(t.downloaded, downloaded)
	kept := restoreInto(sh, &t.v4, v4, cutoff, now, func(ip [4]byte) bool { return IsPublic(netip.AddrFrom4(ip)) })
	if len(v6) > 0 {
		kept += restoreInto(sh, t.growPeers6(), v6, cutoff, now, func(ip [16]byte) bool { return IsPublic(netip.AddrFrom16(ip)) })
		t.dropEmptyPeers6()
	}
	if _, known := sh.torrents[*h]; !known && !t.empty() {
		sh.torrents[*h] = t
		s.totals.torrents.Add(1)
	}
	return kept
}

func restoreInto[A bittorrent.IP](sh *shard, l *peerList[A], peers []Peer[A], cutoff, now uint32, isPublic func(A) bool) (kept int) {
	for _, p := range peers {
		if p.LastSeen < cutoff || p.Port == 0 {
			continue
		}
		if l.find(p.endpoint()) >= 0 {
			continue
		}
		p.LastSeen = min(p.LastSeen, now)
		p.Public = isPublic(p.IP)
		l.insert(p)
		sh.count(p.Seeder, 1)
		sh.totals.peers.Add(1)
		kept++
	}
	return kept
}
