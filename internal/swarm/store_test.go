package swarm

import (
	"cmp"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

var testConfig = Config{
	AnnounceInterval: 30 * time.Minute,
	MinInterval:      5 * time.Minute,
	PeerTTL:          45 * time.Minute,
	NumWantDefault:   50,
	NumWantMax:       200,
	MaxPeers:         1 << 40,
	MaxTorrents:      1 << 40,
}

func hashOf(n int) bittorrent.InfoHash {
	return sha1.Sum(fmt.Appendf(nil, "torrent %d", n))
}

func v4(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}) }

func announce(s *Store, h bittorrent.InfoHash, addr netip.Addr, port uint16, left uint64, ev bittorrent.Event, numwant int32) *bittorrent.AnnounceResponse {
	req := bittorrent.AnnounceRequest{InfoHash: h, Addr: addr, Port: port, Left: left, Event: ev, NumWant: numwant}
	copy(req.PeerID[:], fmt.Sprintf("-TX0001-%012d", port))
	var resp bittorrent.AnnounceResponse
	s.Announce(&req, &resp)
	return &resp
}

// checkInvariants verifies every shard's table, arenas and counters
// against a full recount.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	if err := invariantsErr(s); err != nil {
		t.Fatal(err)
	}
}

// invariantsErr is checkInvariants for any goroutine: it returns what is
// wrong rather than failing the test, and never leaves a shard locked,
// so that a failing check cannot deadlock announcers still running.
func invariantsErr(s *Store) error {
	if err := shardsErr(s); err != nil {
		return err
	}
	if st := s.Stats(); int64(st.Peers()) != s.totals.peers.Load() || int64(st.Torrents) != s.totals.torrents.Load() {
		return fmt.Errorf("totals %d peers, %d torrents; shards %+v", s.totals.peers.Load(), s.totals.torrents.Load(), st)
	}
	return nil
}

// shardsErr checks each shard on its own, under its lock: it may run while
// announces go on, where the store-wide totals, which change between two
// shards' locks, cannot be compared.
func shardsErr(s *Store) error {
	for si := range s.shards {
		if err := s.shards[si].invariantsErr(s); err != nil {
			return fmt.Errorf("shard %d: %w", si, err)
		}
	}
	return nil
}

func (sh *shard) invariantsErr(s *Store) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var seeders, leechers [2]int
	torrents := 0
	var blocks4, blocks6 [][2]uint32
	for i := range sh.table.slots {
		sl := &sh.table.slots[i]
		if sl.dist == 0 {
			continue
		}
		torrents++
		if got := sh.table.find(&sl.hash, s.hash(&sl.hash)); got != i {
			return fmt.Errorf("torrent %x at %d, but find says %d", sl.hash, i, got)
		}
		if sl.empty() {
			return fmt.Errorf("%x: empty torrent kept", sl.hash)
		}
		var err error
		v4, v6 := sh.view4(s, i), sh.view6(s, i)
		if blocks4, err = listErr(&v4, blocks4); err != nil {
			return fmt.Errorf("%x IPv4: %w", sl.hash[:4], err)
		}
		if blocks6, err = listErr(&v6, blocks6); err != nil {
			return fmt.Errorf("%x IPv6: %w", sl.hash[:4], err)
		}
		for f := range sl.lists {
			l := &sl.lists[f]
			seeders[f] += int(l.seeders())
			leechers[f] += int(l.n() - l.seeders())
		}
	}
	if torrents != sh.table.count {
		return fmt.Errorf("table counts %d torrents, holds %d", sh.table.count, torrents)
	}
	if seeders != sh.seeders || leechers != sh.leechers {
		return fmt.Errorf("shard counts %v/%v, recount %v/%v", sh.seeders, sh.leechers, seeders, leechers)
	}
	if err := blocksErr(blocks4, sh.arena4.used, sh.arena4.live, len(sh.arena4.recs)); err != nil {
		return fmt.Errorf("IPv4 arena: %w", err)
	}
	if err := blocksErr(blocks6, sh.arena6.used, sh.arena6.live, len(sh.arena6.recs)); err != nil {
		return fmt.Errorf("IPv6 arena: %w", err)
	}
	if err := touchedErr(&sh.arena4); err != nil {
		return fmt.Errorf("IPv4 arena: %w", err)
	}
	if err := touchedErr(&sh.arena6); err != nil {
		return fmt.Errorf("IPv6 arena: %w", err)
	}
	return nil
}

// touchedErr verifies an arena's touched mark: at or past what is used,
// within the arena, and nothing written past it (its pages handed back,
// or never mapped), so that the pages the arena keeps are bounded by it.
func touchedErr[A bittorrent.IP](a *arena[A]) error {
	if a.touched < a.used || int(a.touched) > len(a.recs) {
		return fmt.Errorf("touched mark at %d, %d records used, %d in all", a.touched, a.used, len(a.recs))
	}
	for i := int(a.touched); i < len(a.recs); i++ {
		if a.recs[i] != (record[A]{}) {
			return fmt.Errorf("record %d written past the touched mark at %d", i, a.touched)
		}
	}
	return nil
}

// listErr verifies one list: partition, no repeats, the index, its block
// (an empty list has none and points nowhere); it returns blocks with the
// list's [start, end) added.
func listErr[A bittorrent.IP](v *view[A], blocks [][2]uint32) ([][2]uint32, error) {
	l, c := v.list(), *v.class()
	n := l.n()
	if (n == 0) != (c == 0) || c > maxClass || n > classCap[c] || l.uploadOnly() > n || (n == 0 && l.at != 0) {
		return nil, fmt.Errorf("list at %d of %d peers (%d seeders, %d partial seeds) in class %d", l.at, n, l.seeders(), l.partial(), c)
	}
	if c != 0 && uint64(l.at)+uint64(v.a.blockSize(c)) > uint64(len(v.a.recs)) {
		return nil, fmt.Errorf("list at %d of %d peers in class %d runs past the arena's %d records", l.at, n, c, len(v.a.recs))
	}
	for i, p := range v.peers() {
		if got := v.find(p.ip, p.port); got != i {
			return nil, fmt.Errorf("peer %v:%d at %d, but find says %d", p.ip, p.port, i, got)
		}
	}
	if idx := v.index(); idx != nil {
		entries := 0
		for _, e := range idx {
			if e != 0 {
				entries++
			}
		}
		if entries != int(n) {
			return nil, fmt.Errorf("index holds %d entries for %d peers", entries, n)
		}
	}
	if c == 0 {
		return blocks, nil
	}
	return append(blocks, [2]uint32{l.at, l.at + v.a.blockSize(c)}), nil
}

// blocksErr verifies that blocks do not overlap and that the arena's
// accounting matches them: live is exactly what blocks hold, garbage
// (used - live) never negative, nothing past the records the arena has.
func blocksErr(blocks [][2]uint32, used, live uint32, size int) error {
	if live > used || int(used) > size {
		return fmt.Errorf("%d records live, %d used, %d in all", live, used, size)
	}
	slices.SortFunc(blocks, func(a, b [2]uint32) int { return cmp.Compare(a[0], b[0]) })
	var sum uint32
	for i, b := range blocks {
		if i > 0 && b[0] < blocks[i-1][1] {
			return fmt.Errorf("blocks %v and %v overlap", blocks[i-1], b)
		}
		if b[1] > used {
			return fmt.Errorf("block %v past the %d records used", b, used)
		}
		sum += b[1] - b[0]
	}
	if sum != live {
		return fmt.Errorf("arena counts %d live records, blocks hold %d", live, sum)
	}
	return nil
}

func TestAnnounceReturnsOthersNotSelf(t *testing.T) {
	s := New(testConfig)
	h := hashOf(1)
	if r := announce(s, h, v4(1), 1001, 100, bittorrent.EventStarted, -1); len(r.Peers4) != 0 || r.Incomplete != 1 {
		t.Fatalf("first peer got %d peers, incomplete %d", len(r.Peers4), r.Incomplete)
	}
	r := announce(s, h, v4(2), 1002, 100, bittorrent.EventStarted, -1)
	if len(r.Peers4) != 1 || r.Peers4[0].IP != v4(1).As4() || r.Peers4[0].Port != 1001 {
		t.Fatalf("second peer got %+v", r.Peers4)
	}
	if r.Incomplete != 2 || r.Complete != 0 {
		t.Fatalf("counts %d/%d", r.Complete, r.Incomplete)
	}
	if r.Interval < 30*time.Minute || r.Interval > 32*time.Minute || r.MinInterval != 5*time.Minute {
		t.Fatalf("intervals %v %v", r.Interval, r.MinInterval)
	}
	checkInvariants(t, s)
}

func TestSameAddressDifferentPortIsAnotherPeer(t *testing.T) {
	s := New(testConfig)
	h := hashOf(1)
	announce(s, h, v4(1), 1001, 1, 0, -1)
	r := announce(s, h, v4(1), 1002, 1, 0, -1)
	if r.Incomplete != 2 || len(r.Peers4) != 1 || r.Peers4[0].Port != 1001 {
		t.Fatalf("got %+v", r)
	}
	// Announcing again from the same endpoint updates, not adds.
	if r := announce(s, h, v4(1), 1002, 1, 0, -1); r.Incomplete != 2 {
		t.Fatalf("re-announce counted as new peer: %d", r.Incomplete)
	}
}

func TestSeedersGetLeechersOnly(t *testing.T) {
	s := New(testConfig)
	h := hashOf(2)
	for i := range 10 {
		announce(s, h, v4(i), uint16(2000+i), 0, bittorrent.EventStarted, -1)
	}
	for i := range 5 {
		announce(s, h, v4(100+i), uint16(3000+i), 5, bittorrent.EventStarted, -1)
	}
	r := announce(s, h, v4(200), 4000, 0, bittorrent.EventStarted, -1)
	if r.Complete != 11 || r.Incomplete != 5 {
		t.Fatalf("counts %d/%d", r.Complete, r.Incomplete)
	}
	if len(r.Peers4) != 5 {
		t.Fatalf("seeder got %d peers, want the 5 leechers", len(r.Peers4))
	}
	for _, p := range r.Peers4 {
		if p.Port < 3000 || p.Port >= 3005 {
			t.Fatalf("seeder was sent non-leecher %v", p)
		}
	}
	r = announce(s, h, v4(201), 4001, 9, bittorrent.EventStarted, -1)
	if len(r.Peers4) != 16 {
		t.Fatalf("leecher got %d peers, want all 16 others", len(r.Peers4))
	}
	checkInvariants(t, s)
}

func TestStateChangesAndStopped(t *testing.T) {
	s := New(testConfig)
	h := hashOf(3)
	announce(s, h, v4(1), 1, 10, bittorrent.EventStarted, -1)
	announce(s, h, v4(2), 2, 10, bittorrent.EventStarted, -1)
	r := announce(s, h, v4(1), 1, 0, bittorrent.EventCompleted, -1)
	if r.Complete != 1 || r.Incomplete != 1 {
		t.Fatalf("after completed: %d/%d", r.Complete, r.Incomplete)
	}
	announce(s, h, v4(1), 1, 0, bittorrent.EventCompleted, -1)  // repeated: counted once
	announce(s, h, v4(2), 2, 10, bittorrent.EventCompleted, -1) // data still left: not a download
	announce(s, h, v4(2), 2, 10, bittorrent.EventCompleted, -1)
	if st := scrape(s, h); st.Downloaded != 1 || st.Complete != 1 || st.Incomplete != 1 {
		t.Fatalf("scrape %+v", st)
	}
	// A stop from another address, even with the same port, removes nothing.
	announce(s, h, v4(9), 1, 0, bittorrent.EventStopped, -1)
	if st := scrape(s, h); st.Complete != 1 || st.Incomplete != 1 {
		t.Fatalf("spoofed stop removed a peer: %+v", st)
	}
	r = announce(s, h, v4(1), 1, 0, bittorrent.EventStopped, -1)
	if len(r.Peers4) != 0 || r.Complete != 0 || r.Incomplete != 1 {
		t.Fatalf("stopped reply %+v", r)
	}
	announce(s, h, v4(2), 2, 10, bittorrent.EventStopped, -1)
	if st := s.Stats(); st.Torrents != 0 || st.Peers() != 0 {
		t.Fatalf("empty torrent not freed: %+v", st)
	}
	if st := scrape(s, h); st != (bittorrent.ScrapeStats{}) {
		t.Fatalf("scrape of freed torrent %+v", st)
	}
	checkInvariants(t, s)
}

func TestNumWant(t *testing.T) {
	s := New(testConfig)
	h := hashOf(4)
	for i := range 300 {
		announce(s, h, v4(i), 6881, 1, 0, -1)
	}
	for _, c := range []struct {
		numwant int32
		want    int
	}{{-1, 50}, {0, 0}, {10, 10}, {1 << 30, 200}, {-1 << 31, 50}} {
		if r := announce(s, h, v4(1000), 6881, 1, 0, c.numwant); len(r.Peers4) != c.want {
			t.Errorf("numwant %d: got %d peers, want %d", c.numwant, len(r.Peers4), c.want)
		}
	}
}

func TestPeersAreChosenAtRandom(t *testing.T) {
	s := New(testConfig)
	h := hashOf(5)
	for i := range 100 {
		announce(s, h, v4(i), 6881, 1, 0, -1)
	}
	seen := map[bittorrent.Peer4]bool{}
	for range 50 {
		for _, p := range announce(s, h, v4(1000), 6881, 1, 0, 10).Peers4 {
			seen[p] = true
		}
	}
	if len(seen) < 50 {
		t.Fatalf("50 replies of 10 peers drew only %d distinct peers of 100", len(seen))
	}
}

func TestIPv6AndBothFamilies(t *testing.T) {
	s := New(testConfig)
	h := hashOf(6)
	a6 := netip.MustParseAddr("2001:db8::1")
	announce(s, h, netip.MustParseAddr("192.0.2.1"), 1, 1, 0, -1)
	r := announce(s, h, a6, 2, 1, 0, -1)
	if len(r.Peers6) != 0 || len(r.Peers4) != 0 || r.Incomplete != 2 {
		t.Fatalf("one-family reply crossed families: %+v", r)
	}
	req := bittorrent.AnnounceRequest{InfoHash: h, Addr: netip.MustParseAddr("2001:db8::2"), Port: 3, Left: 1, NumWant: -1, BothFamilies: true}
	var resp bittorrent.AnnounceResponse
	s.Announce(&req, &resp)
	if len(resp.Peers6) != 1 || resp.Peers6[0].IP != a6.As16() || len(resp.Peers4) != 1 {
		t.Fatalf("both-families reply %+v", resp)
	}
	checkInvariants(t, s)
}

// TestLargeSwarmChurn drives a swarm across the index thresholds in both
// directions with joins, state changes and leaves, checking every invariant.
func TestLargeSwarmChurn(t *testing.T) {
	s := New(testConfig)
	h := hashOf(7)
	for i := range 500 {
		announce(s, h, v4(i), 6881, uint64(i%3), 0, 0)
	}
	checkInvariants(t, s)
	for i := 0; i < 500; i += 2 {
		announce(s, h, v4(i), 6881, 0, bittorrent.EventCompleted, 0)
	}
	checkInvariants(t, s)
	for i := 0; i < 490; i++ {
		announce(s, h, v4(i), 6881, 0, bittorrent.EventStopped, 0)
	}
	checkInvariants(t, s)
	if st := scrape(s, h); st.Complete+st.Incomplete != 10 {
		t.Fatalf("scrape %+v", st)
	}
}

func TestExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(testConfig)
		for i := range 100 {
			announce(s, hashOf(i%7), v4(i), 6881, uint64(i%2), 0, 0)
		}
		time.Sleep(30 * time.Minute)
		for i := range 10 { // these stay fresh
			announce(s, hashOf(i%7), v4(i), 6881, uint64(i%2), 0, 0)
		}
		time.Sleep(16 * time.Minute)
		if n := s.Expire(); n != 90 {
			t.Fatalf("expired %d peers, want 90", n)
		}
		if st := s.Stats(); st.Peers() != 10 || st.Torrents != 7 {
			t.Fatalf("after expiry %+v", st)
		}
		checkInvariants(t, s)
		time.Sleep(46 * time.Minute)
		s.Expire()
		if st := s.Stats(); st.Peers() != 0 || st.Torrents != 0 {
			t.Fatalf("after full expiry %+v", st)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	s := New(testConfig)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				ev := bittorrent.EventNone
				if i%5 == 4 {
					ev = bittorrent.EventStopped
				}
				announce(s, hashOf(i%13), v4(w*10000+i%97), 6881, uint64(i%2), ev, 20)
				if i%100 == 0 {
					s.Expire()
					s.Stats()
				}
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, s)
}

// BenchmarkAnnounce measures the store's share of an announce in a swarm of
// 1000 peers, where the requester is already known.
func BenchmarkAnnounce(b *testing.B) {
	s := New(testConfig)
	h := hashOf(1)
	for i := range 1000 {
		announce(s, h, v4(i), 6881, uint64(i%2), 0, 0)
	}
	req := bittorrent.AnnounceRequest{InfoHash: h, Addr: v4(7), Port: 6881, Left: 1, NumWant: 50}
	var resp bittorrent.AnnounceResponse
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Announce(&req, &resp); err != nil || len(resp.Peers4) != 50 {
			b.Fatalf("%d peers, error %v", len(resp.Peers4), err)
		}
	}
}

// BenchmarkAnnounceWorkingSet is the store's share of an announce as the
// store outgrows the caches: torrents of 16 peers each, announced to at
// random by peers already in them (no growth), 12 peers a reply, all at
// private addresses as in test/compare.sh. Info hashes are computed, not
// read from a table, as a request's arrives in a datagram just received:
// what grows with the torrents is only the store's own memory traffic,
// the table slot and the swarm's records. At 64 torrents all is cached.
func BenchmarkAnnounceWorkingSet(b *testing.B) {
	hash := func(t uint64) (h bittorrent.InfoHash) {
		for i := 0; i < len(h); i += 8 {
			t += 0x9E3779B97F4A7C15 // splitmix64
			z := (t ^ t>>30) * 0xBF58476D1CE4E5B9
			z = (z ^ z>>27) * 0x94D049BB133111EB
			var w [8]byte
			binary.LittleEndian.PutUint64(w[:], z^z>>31)
			copy(h[i:], w[:])
		}
		return h
	}
	for _, torrents := range []uint64{64, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("torrents=%d", torrents), func(b *testing.B) {
			s := New(testConfig)
			defer s.Close()
			local := netip.MustParseAddr("127.0.0.1")
			req := bittorrent.AnnounceRequest{Addr: local, NumWant: 0}
			var resp bittorrent.AnnounceResponse
			for t := range torrents {
				req.InfoHash = hash(t)
				for p := range uint16(16) {
					req.Port, req.Left = 1+p, uint64(p%3)
					if err := s.Announce(&req, &resp); err != nil {
						b.Fatal(err)
					}
				}
			}
			req.NumWant, req.Left = 12, 1
			x := uint64(0x9E3779B97F4A7C15)
			b.ReportAllocs()
			for b.Loop() {
				x ^= x << 13 // xorshift64
				x ^= x >> 7
				x ^= x << 17
				req.InfoHash, req.Port = hash(x%torrents), uint16(1+x>>60)
				if err := s.Announce(&req, &resp); err != nil || len(resp.Peers4) != 12 {
					b.Fatalf("%d peers, error %v", len(resp.Peers4), err)
				}
			}
		})
	}
}

func scrape(s *Store, h bittorrent.InfoHash) bittorrent.ScrapeStats {
	st, _ := s.Scrape(&h)
	return st
}

func TestLimits(t *testing.T) {
	cfg := testConfig
	cfg.MaxPeers, cfg.MaxTorrents = 5, 2
	s := New(cfg)
	try := func(h bittorrent.InfoHash, n int, port uint16) error {
		req := bittorrent.AnnounceRequest{InfoHash: h, Addr: v4(n), Port: port, Left: 1, NumWant: -1}
		return s.Announce(&req, &bittorrent.AnnounceResponse{})
	}
	for i := range 3 {
		if err := try(hashOf(1), i, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := try(hashOf(2), 9, 1); err != nil {
		t.Fatal(err)
	}
	if err := try(hashOf(3), 9, 1); err != ErrTooManyTorrents {
		t.Fatalf("third torrent: %v", err)
	}
	try(hashOf(2), 10, 1)
	if err := try(hashOf(2), 11, 1); err != ErrTooManyPeers {
		t.Fatalf("sixth peer: %v", err)
	}
	// Known peers keep announcing; a leave makes room for a newcomer.
	if err := try(hashOf(1), 0, 1); err != nil {
		t.Fatalf("re-announce when full: %v", err)
	}
	req := bittorrent.AnnounceRequest{InfoHash: hashOf(1), Addr: v4(0), Port: 1, Event: bittorrent.EventStopped}
	s.Announce(&req, &bittorrent.AnnounceResponse{})
	if err := try(hashOf(2), 11, 1); err != nil {
		t.Fatalf("after a leave: %v", err)
	}
	st := s.Stats()
	if st.Peers() != 5 || st.Torrents != 2 || st.RefusedPeers != 1 || st.RefusedTorrents != 1 {
		t.Fatalf("stats %+v", st)
	}
	if s.totals.peers.Load() != 5 || s.totals.torrents.Load() != 2 {
		t.Fatalf("totals %d/%d", s.totals.peers.Load(), s.totals.torrents.Load())
	}
	checkInvariants(t, s)
}

func TestPrivatePeersStayPrivate(t *testing.T) {
	for _, private := range []bool{false, true} {
		cfg := testConfig
		cfg.PrivatePeers = private
		s := New(cfg)
		h := hashOf(8)
		for _, a := range []string{"10.1.2.3", "127.0.0.1", "169.254.1.1", "100.64.0.1", "203.0.113.5", "2001:db8::5", "fd00::1", "fe80::1"} {
			announce(s, h, netip.MustParseAddr(a), 6881, 1, 0, -1)
		}
		req := bittorrent.AnnounceRequest{InfoHash: h, Addr: netip.MustParseAddr("198.51.100.1"), Port: 1, Left: 1, NumWant: -1, BothFamilies: true}
		var resp bittorrent.AnnounceResponse
		s.Announce(&req, &resp)
		wantPublic, wantAll := 2, 8
		if got := len(resp.Peers4) + len(resp.Peers6); (private && got != wantAll) || (!private && got != wantPublic) {
			t.Fatalf("private_peers=%v: a public client got %d peers: %+v", private, got, resp)
		}
		req.Addr = netip.MustParseAddr("192.168.7.7") // sees the public client too
		s.Announce(&req, &resp)
		if got := len(resp.Peers4) + len(resp.Peers6); got != wantAll+1 {
			t.Fatalf("a private client got %d peers, want all %d", got, wantAll+1)
		}
	}
}

// TestAnnounceAndScrapeDoNotAllocate asserts what the frontends rely on:
// once a store has grown, the request path allocates nothing, whether a
// known peer re-announces, a newcomer joins and leaves, or a torrent is
// scraped, in either family.
func TestAnnounceAndScrapeDoNotAllocate(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	h := hashOf(1)
	for i := range 1000 {
		announce(s, h, netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), 6881, uint64(i%2), 0, 0)
		announce(s, h, netip.AddrFrom16([16]byte{0x20, 0x01, 14: byte(i >> 8), 15: byte(i)}), 6881, uint64(i%2), 0, 0)
	}
	var resp bittorrent.AnnounceResponse
	for _, addr := range []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")} {
		known := bittorrent.AnnounceRequest{InfoHash: h, Addr: addr, Port: 6881, Left: 1, NumWant: 50, BothFamilies: true}
		s.Announce(&known, &resp) // joins; the reply buffers grow
		joinLeave := known
		joinLeave.Port = 7000
		cases := map[string]func(){
			"re-announce": func() {
				if s.Announce(&known, &resp); len(resp.Peers4)+len(resp.Peers6) != 50 {
					t.Fatalf("reply of %d+%d peers", len(resp.Peers4), len(resp.Peers6))
				}
			},
			"join and leave": func() {
				joinLeave.Event = bittorrent.EventStarted
				s.Announce(&joinLeave, &resp)
				joinLeave.Event = bittorrent.EventStopped
				s.Announce(&joinLeave, &resp)
			},
			"pause and resume": func() { // a downloader turned partial seed and back
				known.Event = bittorrent.EventPaused
				s.Announce(&known, &resp)
				known.Event = bittorrent.EventNone
				s.Announce(&known, &resp)
			},
			"scrape": func() {
				if st, _ := s.Scrape(&h); st.Complete != 1000 {
					t.Fatalf("scrape %+v", st)
				}
			},
		}
		for name, f := range cases {
			f()
			if n := testing.AllocsPerRun(1000, f); n != 0 {
				t.Errorf("%v %s: %v allocations per request", addr, name, n)
			}
		}
	}
}

// TestRepliesAreUniform checks that every candidate is equally likely to
// be sent: 39 other leechers, 10 a reply, 20,000 replies; the counts must
// pass a chi-square test (38 degrees of freedom) at a level a correct
// store fails once in about a million runs.
func TestRepliesAreUniform(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	h := hashOf(9)
	for i := range 40 {
		announce(s, h, v4(i), 6881, 1, 0, 0)
	}
	counts := map[bittorrent.Peer4]int{}
	const replies, per = 20000, 10
	for range replies {
		for _, p := range announce(s, h, v4(0), 6881, 1, 0, per).Peers4 {
			counts[p]++
		}
	}
	if len(counts) != 39 {
		t.Fatalf("%d distinct peers sent, want the 39 others", len(counts))
	}
	expected := float64(replies*per) / 39
	chi2 := 0.0
	for _, c := range counts {
		chi2 += (float64(c) - expected) * (float64(c) - expected) / expected
	}
	if chi2 > 95 {
		t.Fatalf("chi-square %.1f over 38 degrees of freedom: not uniform (%v)", chi2, counts)
	}
}

// BenchmarkExpireBigSwarm measures a sweep that expires nothing over one
// swarm of a million IPv4 peers: how long the swarm's shard is locked.
func BenchmarkExpireBigSwarm(b *testing.B) {
	s := New(testConfig)
	defer s.Close()
	h := hashOf(1)
	now := uint32(time.Now().Unix())
	tr := Torrent{Hash: h}
	for i := range 1 << 20 {
		tr.Peers4 = append(tr.Peers4, SnapshotPeer4{IP: [4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}, Port: 1, LastSeen: now})
	}
	if kept, err := s.Restore(&tr, 0, now); kept != len(tr.Peers4) || err != nil {
		b.Fatalf("kept %d: %v", kept, err)
	}
	for b.Loop() {
		if n := s.Expire(); n != 0 {
			b.Fatalf("expired %d", n)
		}
	}
}
