package swarm

import (
	"slices"

	"github.com/trakx/trakx/internal/bittorrent"
)

// counted is one torrent's hash and counts, as EachTorrent copies them out
// of a shard: no peer.
type counted struct {
	hash  bittorrent.InfoHash
	stats bittorrent.ScrapeStats
}

// EachTorrent calls f with every torrent's info hash and counts, the ones
// a scrape reports. It copies no peer: each shard's torrents are copied,
// under the shard's lock and for no longer, as hashes and counts into a
// buffer reused from shard to shard (grown once to the largest); f runs
// on that copy after the lock is released, so neither f nor anything it
// writes to holds up a request. Each torrent's counts are consistent (one
// lock); the shards are visited one after the other, so the whole is not
// one instant's. f must not keep h.
func (s *Store) EachTorrent(f func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats)) {
	var buf []counted
	for i := range s.shards {
		buf = s.shards[i].copyCounts(buf[:0])
		for k := range buf {
			f(&buf[k].hash, buf[k].stats)
		}
	}
}

// copyCounts appends the shard's torrents' hashes and counts to dst, under
// its lock.
func (sh *shard) copyCounts(dst []counted) []counted {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	dst = slices.Grow(dst, sh.table.count)
	for i := range sh.table.slots {
		t := &sh.table.slots[i]
		if t.dist == 0 {
			continue
		}
		dst = append(dst, counted{hash: t.hash, stats: t.stats()})
	}
	return dst
}
