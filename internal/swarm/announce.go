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
	uploadOnly := kindOf(req) != downloader
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
	a := shardAnnounce{req: req, cfg: cfg, totals: s.totals, sh: sh, now: now, pick: pick{want: want, self: -1, uploadOnly: uploadOnly, publicOnly: publicOnly}}
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
		resp.Counted = a.counted
	}
	return err
}

// kindOf is what an announce makes its peer: a seeder when it has nothing
// left, else a partial seed when it says paused (BEP 21: every announce of
// a partial seed does), else a downloader.
func kindOf(req *bittorrent.AnnounceRequest) kind {
	switch {
	case req.Left == 0:
		return seeder
	case req.Event == bittorrent.EventPaused:
		return partialSeed
	}
	return downloader
}

// counts are a torrent's seeders and leechers (partial seeds among them)
// over both families.
func (t *slot) counts() (seeders, leechers uint32) {
	for i := range t.lists {
		l := &t.lists[i]
		s := l.seeders()
		seeders += s
		leechers += l.n() - s
	}
	return seeders, leechers
}

// stats are a torrent's figures as a scrape reports them: counts, and
// the downloaders, the leechers that are not partial seeds.
func (t *slot) stats() bittorrent.ScrapeStats {
	seeders, leechers := t.counts()
	partial := t.lists[ipv4].partial() + t.lists[ipv6].partial()
	return bittorrent.ScrapeStats{Complete: seeders, Downloaded: t.downloaded, Incomplete: leechers, Downloaders: leechers - partial}
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
	// counted: the announce added one to the torrent's downloaded.
	counted bool
}

// pick is which peers of a list a reply may carry, and how many.
type pick struct {
	want       int  // at most this many
	self       int  // the requester's position in the list, skipped; -1: not in it
	uploadOnly bool // the requester wants nothing (a seeder, a partial seed): downloaders only
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
	*ownPeers = appendPeers(*ownPeers, own.peers(), own.list().uploadOnly(), p)
	if a.req.BothFamilies {
		p.want, p.self = p.want-len(*ownPeers), -1
		*otherPeers = appendPeers(*otherPeers, other.peers(), other.list().uploadOnly(), p)
	}
	return nil
}

// announceIn applies one announce to the requester's list and returns
// the requester's position in it, or -1 when it is not (or no longer) in.
func announceIn[A bittorrent.IP](a *shardAnnounce, v *view[A], ip A) (int, error) {
	req, sh := a.req, a.sh
	t := &sh.table.slots[v.slot]
	pos := v.find(ip, req.Port)
	if req.Event == bittorrent.EventStopped {
		if pos >= 0 {
			sh.count(v.fam, v.kindAt(pos), -1)
			v.remove(pos)
			a.totals.peers.Add(-1)
		}
		return -1, nil
	}
	k := kindOf(req)
	completes := req.Event == bittorrent.EventCompleted && k == seeder
	if pos < 0 {
		if !reserve(&a.totals.peers, a.cfg.MaxPeers) {
			a.totals.refusedPeers.Add(1)
			return -1, ErrTooManyPeers
		}
		pos, ok := v.add(record[A]{ip: ip, port: req.Port, seen: a.now}, k)
		if !ok {
			a.totals.peers.Add(-1)
			a.totals.refusedMemory.Add(1)
			return -1, ErrOutOfMemory
		}
		if completes {
			t.downloaded++
			a.counted = true
		}
		sh.count(v.fam, k, 1)
		return pos, nil
	}
	was := v.kindAt(pos)
	if completes && (was != seeder || req.Counted) {
		t.downloaded++
		a.counted = true
	}
	if was != k {
		sh.count(v.fam, was, -1)
		sh.count(v.fam, k, 1)
		pos = v.setKind(pos, was, k)
	}
	v.at(pos).seen = a.now
	return pos, nil
}

// appendPeers copies up to p.want peers of a list (recs, the downloaders
// from uploadOnly on) into a reply: a run starting at a random place among
// the candidates and wrapping around, so that each candidate is equally
// likely to be sent. Candidates are all peers but the requester at p.self,
// downloaders only for a requester that wants nothing; non-public peers
// are passed over when p.publicOnly.
func appendPeers[A bittorrent.IP](dst []bittorrent.PeerOf[A], recs []record[A], uploadOnly uint32, p pick) []bittorrent.PeerOf[A] {
	lo := 0
	if p.uploadOnly {
		lo = int(uploadOnly)
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
	return sh.table.slots[i].stats(), nil
}
