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
	a := shardAnnounce{req: req, cfg: cfg, totals: s.totals, sh: sh, now: now, pick: pick{want: want, self: -1, seeder: seeder, publicOnly: publicOnly}}
	if req.Addr.Is4() {
		err = announceAndReply(&a, &v4, &v6, req.Addr.As4(), &resp.Peers4, &resp.Peers6)
	} else {
		err = announceAndReply(&a, &v6, &v4, req.Addr.As16(), &resp.Peers6, &resp.Peers4)
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

// shardAnnounce is one announce under way in a shard, whose lock it holds:
// the request, the settings it is answered with, the clock reading it is
// stamped with, and which peers its reply may carry. It lives on
// Announce's stack; the steps below take it by pointer.
type shardAnnounce struct {
	req    *bittorrent.AnnounceRequest
	cfg    *Config
	totals *totals
	sh     *shard
	now    uint16 // instant.tick
	pick   pick
}

// pick is which peers of a list a reply may carry, and how many.
type pick struct {
	want       int  // at most this many
	self       int  // the requester's position in the list, skipped; -1: not in it
	seeder     bool // the requester seeds: leechers only
	publicOnly bool // peers at public addresses only
}

// announceAndReply records the requester at ip in its own family's list
// (own) and fills the reply with peers of its family, then, if asked, of
// the other one.
func announceAndReply[A, B bittorrent.IP](a *shardAnnounce, own *view[A], other *view[B], ip A, ownPeers *[]bittorrent.PeerOf[A], otherPeers *[]bittorrent.PeerOf[B]) error {
	self, err := announceIn(a, own, ip)
	if err != nil {
		return err
	}
	p := a.pick
	p.self = self
	*ownPeers = appendPeers(*ownPeers, own.peers(), own.list().seeders, p)
	if a.req.BothFamilies {
		p.want, p.self = p.want-len(*ownPeers), -1
		*otherPeers = appendPeers(*otherPeers, other.peers(), other.list().seeders, p)
	}
	return nil
}

// announceIn applies one announce to the requester's list and returns
// the requester's position in it, or -1 when it is not (or no longer) in.
func announceIn[A bittorrent.IP](a *shardAnnounce, v *view[A], ip A) (int, error) {
	req, sh := a.req, a.sh
	t := &sh.table.slots[v.slot]
	pos := v.find(ip, req.Port)
	seeder := req.Left == 0
	if req.Event == bittorrent.EventStopped {
		if pos >= 0 {
			sh.count(v.fam, pos < int(v.list().seeders), -1)
			v.remove(pos)
			a.totals.peers.Add(-1)
		}
		return -1, nil
	}
	if pos < 0 {
		if !reserve(&a.totals.peers, a.cfg.MaxPeers) {
			a.totals.refusedPeers.Add(1)
			return -1, ErrTooManyPeers
		}
		pos, ok := v.add(record[A]{ip: ip, port: req.Port, seen: a.now}, seeder)
		if !ok {
			a.totals.peers.Add(-1)
			a.totals.refusedMemory.Add(1)
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
	v.at(pos).seen = a.now
	return pos, nil
}

// appendPeers copies up to p.want peers of a list (recs, the first seeders
// of them seeders) into a reply: a run starting at a random place among
// the candidates and wrapping around, so that each candidate is equally
// likely to be sent. Candidates are all peers but the requester at p.self,
// leechers only for a seeder; non-public peers are passed over when
// p.publicOnly.
func appendPeers[A bittorrent.IP](dst []bittorrent.PeerOf[A], recs []record[A], seeders uint32, p pick) []bittorrent.PeerOf[A] {
	lo := 0
	if p.seeder {
		lo = int(seeders)
	}
	count := len(recs) - lo
	skipSelf := p.self >= lo
	if skipSelf {
		count--
	}
	if count <= 0 || p.want <= 0 {
		return dst
	}
	start := rand.IntN(count)
	for k, taken := 0, 0; k < count && taken < p.want; k++ {
		i := start + k
		if i >= count {
			i -= count
		}
		i += lo
		if skipSelf && i >= p.self {
			i++
		}
		r := &recs[i]
		if p.publicOnly && !isPublicIP(r.ip) {
			continue
		}
		dst = append(dst, bittorrent.PeerOf[A]{IP: r.ip, Port: r.port})
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
	return sh.table.slots[i].scrapeStats(), nil // EachTorrent's counts too
}
