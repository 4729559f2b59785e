package swarm

import (
	"math/rand/v2"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

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

// appendPeers copies up to want peers of the list into a reply: a run
// starting at a random place among the candidates and wrapping around, so
// that each candidate is equally likely to be sent. Candidates are all
// peers but the requester at self (-1: not in the list), leechers only for
// a seeder; non-public peers are passed over when publicOnly.
func appendPeers[A bittorrent.IP](dst []bittorrent.PeerOf[A], recs []record[A], seeders uint32, want, self int, seeder, publicOnly bool) []bittorrent.PeerOf[A] {
	lo := 0
	if seeder {
		lo = int(seeders)
	}
	count := len(recs) - lo
	skipSelf := self >= lo
	if skipSelf {
		count--
	}
	if count <= 0 || want <= 0 {
		return dst
	}
	start := rand.IntN(count)
	for k, taken := 0, 0; k < count && taken < want; k++ {
		i := start + k
		if i >= count {
			i -= count
		}
		i += lo
		if skipSelf && i >= self {
			i++
		}
		p := &recs[i]
		if publicOnly && !isPublicIP(p.ip) {
			continue
		}
		dst = append(dst, bittorrent.PeerOf[A]{IP: p.ip, Port: p.port})
		taken++
	}
	return dst
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
