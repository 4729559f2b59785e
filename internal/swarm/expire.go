package swarm

import (
	"runtime"
	"time"
)

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
		for fam, gone := range [2][3]uint32{v4.expire(now, ttl), v6.expire(now, ttl)} {
			for k, n := range gone {
				sh.count(fam, kind(k), -int(n))
				removed += int(n)
			}
		}
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
