package swarm

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// The reference model: plain maps, written straight from the package's
// contract, with none of the store's layout.
type modelPeer struct {
	seeder  bool
	partial bool  // a partial seed (BEP 21); never a seeder too
	seen    int64 // unix seconds
}

// wantsNothing: a seeder or a partial seed, which are sent downloaders only.
func (p *modelPeer) wantsNothing() bool { return p.seeder || p.partial }

type modelTorrent struct {
	peers      map[netip.AddrPort]*modelPeer
	downloaded uint32
}

type model map[bittorrent.InfoHash]*modelTorrent

// announce applies req to the model and reports whether it counted a
// completion.
func (m model) announce(req *bittorrent.AnnounceRequest, now int64) (counted bool) {
	t := m[req.InfoHash]
	key := netip.AddrPortFrom(req.Addr, req.Port)
	if req.Event == bittorrent.EventStopped {
		if t != nil {
			delete(t.peers, key)
			if len(t.peers) == 0 {
				delete(m, req.InfoHash)
			}
		}
		return false
	}
	if t == nil {
		t = &modelTorrent{peers: map[netip.AddrPort]*modelPeer{}}
		m[req.InfoHash] = t
	}
	p := t.peers[key]
	if req.Event == bittorrent.EventCompleted && req.Left == 0 && (p == nil || !p.seeder || req.Counted) {
		t.downloaded++
		counted = true
	}
	if p == nil {
		p = &modelPeer{}
		t.peers[key] = p
	}
	p.seeder, p.seen = req.Left == 0, now
	p.partial = !p.seeder && req.Event == bittorrent.EventPaused
	return counted
}

func (m model) expire(now int64, ttl time.Duration) {
	for h, t := range m {
		for k, p := range t.peers {
			if now-p.seen > int64(ttl/time.Second) {
				delete(t.peers, k)
			}
		}
		if len(t.peers) == 0 {
			delete(m, h)
		}
	}
}

// candidates are the peers of one family that may answer req.
func (m model) candidates(req *bittorrent.AnnounceRequest, ipv6, privatePeers bool) map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	t := m[req.InfoHash]
	if t == nil {
		return out
	}
	self := netip.AddrPortFrom(req.Addr, req.Port)
	publicOnly := !privatePeers && IsPublic(req.Addr)
	wantsNothing := req.Left == 0 || req.Event == bittorrent.EventPaused
	for k, p := range t.peers {
		if k == self || k.Addr().Is6() != ipv6 || (wantsNothing && p.wantsNothing()) || (publicOnly && !IsPublic(k.Addr())) {
			continue
		}
		out[k] = true
	}
	return out
}

func (m model) stats(h bittorrent.InfoHash) (st bittorrent.ScrapeStats) {
	t := m[h]
	if t == nil {
		return st
	}
	st.Downloaded = t.downloaded
	for _, p := range t.peers {
		switch {
		case p.seeder:
			st.Complete++
		case p.partial:
			st.Incomplete++
		default:
			st.Incomplete++
			st.Downloaders++
		}
	}
	return st
}

// modelWorld is the random world the test draws from: a few torrents, one
// of them hot so that its swarm grows past the index threshold, and peers
// at public and private addresses of both families.
type modelWorld struct {
	rng    *rand.Rand
	hashes []bittorrent.InfoHash
	addrs  []netip.Addr
}

func newModelWorld(seed uint64) *modelWorld {
	w := &modelWorld{rng: rand.New(rand.NewPCG(seed, 1))}
	for i := range 6 {
		w.hashes = append(w.hashes, hashOf(1000+i))
	}
	for i := range 24 {
		w.addrs = append(w.addrs, netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}))
	}
	w.addrs = append(w.addrs, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("127.0.0.1"))
	for i := range 8 {
		w.addrs = append(w.addrs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
	}
	w.addrs = append(w.addrs, netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fe80::1"))
	return w
}

func (w *modelWorld) request() bittorrent.AnnounceRequest {
	r := w.rng
	h := w.hashes[0] // the hot torrent
	if r.IntN(3) == 0 {
		h = w.hashes[r.IntN(len(w.hashes))]
	}
	req := bittorrent.AnnounceRequest{
		InfoHash:     h,
		Addr:         w.addrs[r.IntN(len(w.addrs))],
		Port:         uint16(1 + r.IntN(6)),
		Left:         uint64(r.IntN(3)), // a third are seeders
		NumWant:      []int32{-1, 0, 1, 5, 30, 80, 1000}[r.IntN(7)],
		BothFamilies: r.IntN(2) == 0,
	}
	switch n := r.IntN(20); {
	case n < 3:
		req.Event = bittorrent.EventStopped
	case n < 6:
		req.Event = bittorrent.EventCompleted
	case n < 8:
		req.Event = bittorrent.EventStarted
	case n < 12:
		req.Event = bittorrent.EventPaused
	}
	return req
}

// TestStoreAgainstModel drives the store and the model with the same long
// random sequence of announces, clock steps, expiries and snapshot
// round trips, and compares counts and reply membership after each step.
func TestStoreAgainstModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runModel(t, seed, 6000) })
		})
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	cfg := testConfig
	cfg.PeerTTL = 10 * time.Minute
	cfg.NumWantMax = 60
	cfg.PrivatePeers = seed%2 == 1
	s, m, w := New(cfg), model{}, newModelWorld(seed)
	defer func() { s.Close() }()
	var resp bittorrent.AnnounceResponse
	for step := range steps {
		switch n := w.rng.IntN(1000); {
		case n < 8:
			time.Sleep(time.Duration(w.rng.IntN(300)) * time.Second)
		case n < 12:
			s.Expire()
			m.expire(time.Now().Unix(), cfg.PeerTTL)
		case n < 14:
			s = roundTrip(t, s, cfg)
			m.expire(time.Now().Unix(), cfg.PeerTTL)
		default:
			req := w.request()
			if err := s.Announce(&req, &resp); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			want := numWant(&req, &cfg)
			m.announce(&req, time.Now().Unix())
			checkReply(t, step, m, &req, &resp, want, cfg.PrivatePeers)
		}
		checkCounts(t, step, s, m, w.hashes)
	}
	checkInvariants(t, s)
}

// roundTrip copies the store out and restores it into a new one, as a
// save and a load do.
func roundTrip(t *testing.T, s *Store, cfg Config) *Store {
	t.Helper()
	var saved []Torrent
	s.Walk(func(tr *Torrent) error {
		c := *tr
		c.Peers4, c.Peers6 = append([]SnapshotPeer4(nil), tr.Peers4...), append([]SnapshotPeer6(nil), tr.Peers6...)
		saved = append(saved, c)
		return nil
	})
	s.Close()
	restored := New(cfg)
	now := uint32(time.Now().Unix())
	for i := range saved {
		restored.Restore(&saved[i], now-uint32(cfg.PeerTTL/time.Second), now)
	}
	checkInvariants(t, restored)
	return restored
}

func checkReply(t *testing.T, step int, m model, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse, want int, privatePeers bool) {
	t.Helper()
	own, other := m.candidates(req, req.Addr.Is6(), privatePeers), m.candidates(req, !req.Addr.Is6(), privatePeers)
	got := map[netip.AddrPort]bool{}
	for _, p := range resp.Peers4 {
		got[netip.AddrPortFrom(netip.AddrFrom4(p.IP), p.Port)] = true
	}
	for _, p := range resp.Peers6 {
		got[netip.AddrPortFrom(netip.AddrFrom16(p.IP), p.Port)] = true
	}
	if len(got) != len(resp.Peers4)+len(resp.Peers6) {
		t.Fatalf("step %d: a peer listed twice: %+v", step, resp)
	}
	ownGot, otherGot := len(resp.Peers4), len(resp.Peers6)
	if req.Addr.Is6() {
		ownGot, otherGot = otherGot, ownGot
	}
	wantOwn, wantOther := min(want, len(own)), 0
	if req.BothFamilies {
		wantOther = min(want-wantOwn, len(other))
	}
	if ownGot != wantOwn || otherGot != wantOther {
		t.Fatalf("step %d: %+v got %d+%d peers, want %d+%d (numwant %d, %d+%d candidates)",
			step, req, ownGot, otherGot, wantOwn, wantOther, want, len(own), len(other))
	}
	for k := range got {
		if !own[k] && !other[k] {
			t.Fatalf("step %d: %+v was sent %v, which does not qualify", step, req, k)
		}
	}
	st := m.stats(req.InfoHash)
	if resp.Complete != st.Complete || resp.Incomplete != st.Incomplete {
		t.Fatalf("step %d: reply counts %d/%d, model %d/%d", step, resp.Complete, resp.Incomplete, st.Complete, st.Incomplete)
	}
}

func checkCounts(t *testing.T, step int, s *Store, m model, hashes []bittorrent.InfoHash) {
	t.Helper()
	var want Stats
	for h := range m {
		for k, p := range m[h].peers {
			if p.seeder {
				want.Seeders++
			} else {
				want.Leechers++
			}
			if k.Addr().Is6() && p.seeder {
				want.Seeders6++
			} else if k.Addr().Is6() {
				want.Leechers6++
			}
		}
	}
	want.Torrents = len(m)
	got := s.Stats()
	// Refusals are the caller's to count: the model takes no refused announce.
	want.RefusedPeers, want.RefusedTorrents, want.RefusedOutOfMemory = got.RefusedPeers, got.RefusedTorrents, got.RefusedOutOfMemory
	if got != want {
		t.Fatalf("step %d: stats %+v, model %+v", step, got, want)
	}
	for _, h := range hashes {
		if got, want := scrape(s, h), m.stats(h); got != want {
			t.Fatalf("step %d: scrape %x %+v, model %+v", step, h[:4], got, want)
		}
	}
}
