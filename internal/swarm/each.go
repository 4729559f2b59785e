package swarm

import "github.com/trakx/trakx/internal/bittorrent"

// EachTorrent calls f with every torrent's info hash and counts, copying
// no peer. Each shard's counts are copied out under its lock, which is all
// the lock is held for; f runs after it is released. h is only good for
// the call.
func (s *Store) EachTorrent(f func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats)) {
	type counts struct {
		hash bittorrent.InfoHash
		st   bittorrent.ScrapeStats
	}
	var buf []counts
	for i := range s.shards {
		sh := &s.shards[i]
		buf = buf[:0]
		sh.mu.Lock()
		for k := range sh.table.slots {
			sl := &sh.table.slots[k]
			if sl.dist == 0 {
				continue
			}
			seeders, leechers := sl.counts()
			buf = append(buf, counts{sl.hash, bittorrent.ScrapeStats{Complete: seeders, Downloaded: sl.downloaded, Incomplete: leechers}})
		}
		sh.mu.Unlock()
		for k := range buf {
			f(&buf[k].hash, buf[k].st)
		}
	}
}
