package swarm

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// TestStressEndsInReference runs announcers, sweeps, compactions, walks
// and invariant checks at once, on at least two cores, and then compares
// the store with a reference built from the announcers' own event logs.
//
// The reference does not depend on how the goroutines interleaved: each
// announcer owns its peers, so its log alone decides them; an anchor peer
// that never leaves keeps every torrent alive, so downloaded counts add
// up across announcers; the TTL is an hour, so no announced peer expires,
// while a population restored as last seen two hours ago must be gone,
// swept from under the announcers. Compaction runs at every turn. The
// announcers send every event, paused too, so peers move between
// seeders, partial seeds and downloaders while blocks move under them.
func TestStressEndsInReference(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	defer func(slack uint32) { garbageSlack = slack }(garbageSlack)
	garbageSlack = 0

	cfg := testConfig
	cfg.PeerTTL = time.Hour
	s := New(cfg)
	defer s.Close()
	const announcers, torrents, peersEach, steps = 4, 5, 120, 4000
	hashes := make([]bittorrent.InfoHash, torrents)
	for i := range hashes {
		hashes[i] = hashOf(7000 + i)
		announce(s, hashes[i], netip.MustParseAddr("2001:db8:aa::1"), 1, 1, bittorrent.EventStarted, 0) // the anchor
		restoreStale(t, s, hashes[i], 300)
	}
	if st := s.Stats(); st.Peers() != torrents*301 {
		t.Fatalf("set-up: %d peers", st.Peers())
	}

	restorer := rand.New(rand.NewPCG(1, 2))
	var failed atomic.Pointer[error]
	fail := func(err error) { failed.CompareAndSwap(nil, &err) }
	stop := make(chan struct{})
	var background sync.WaitGroup
	for _, work := range []func(){
		func() { s.Expire() },
		func() { compactAll(s) },
		func() { // loads of the stale peers, swept again and again; repeats make room first
			if err := restoreStaleErr(s, hashes[restorer.IntN(torrents)], restorer.IntN(300)); err != nil {
				fail(err)
			}
		},
		func() { walkErr(s, fail) },
		func() {
			if err := shardsErr(s); err != nil {
				fail(err)
			}
		},
	} {
		background.Add(1)
		go func() {
			defer background.Done()
			for failed.Load() == nil {
				select {
				case <-stop:
					return
				default:
					work()
				}
			}
		}()
	}

	logs := make([][]stressEvent, announcers)
	var wg sync.WaitGroup
	for a := range announcers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs[a] = runAnnouncer(s, a, hashes, peersEach, steps, &failed, fail)
		}()
	}
	wg.Wait()
	close(stop)
	background.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
	s.Expire()
	checkInvariants(t, s)
	compareWithReference(t, s, stressReference(logs, hashes))
}

// restoreStale restores n peers last seen two hours ago: past the TTL,
// within what a load keeps.
func restoreStale(t *testing.T, s *Store, h bittorrent.InfoHash, n int) {
	t.Helper()
	if kept, err := s.Restore(staleTorrent(h, 0, n), 0, uint32(time.Now().Unix())); kept != n || err != nil {
		t.Fatalf("restored %d of %d stale peers: %v", kept, n, err)
	}
}

// restoreStaleErr restores 40 of the stale peers from the from-th on.
func restoreStaleErr(s *Store, h bittorrent.InfoHash, from int) error {
	if _, err := s.Restore(staleTorrent(h, from, 40), 0, uint32(time.Now().Unix())); err != nil {
		return fmt.Errorf("restoring stale peers: %w", err)
	}
	return nil
}

func staleTorrent(h bittorrent.InfoHash, from, n int) *Torrent {
	now := uint32(time.Now().Unix())
	tr := Torrent{Hash: h}
	for i := from; i < from+n; i++ {
		tr.Peers4 = append(tr.Peers4, SnapshotPeer4{IP: [4]byte{198, 19, byte(i >> 8), byte(i)}, Port: 1, Seeder: i%3 == 0, Partial: i%3 == 1, LastSeen: now - 7200})
	}
	return &tr
}

func compactAll(s *Store) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.arena4.compact(&sh.table, ipv4, s.peerSeed)
		sh.arena6.compact(&sh.table, ipv6, s.peerSeed)
		sh.mu.Unlock()
	}
}

// walkErr walks the store as a save does and checks each torrent's copy.
func walkErr(s *Store, fail func(error)) {
	s.Walk(func(tr *Torrent) error {
		seen := map[netip.AddrPort]bool{}
		for _, p := range tr.Peers4 {
			seen[netip.AddrPortFrom(netip.AddrFrom4(p.IP), p.Port)] = true
		}
		for _, p := range tr.Peers6 {
			seen[netip.AddrPortFrom(netip.AddrFrom16(p.IP), p.Port)] = true
		}
		if len(seen) != len(tr.Peers4)+len(tr.Peers6) || len(seen) == 0 {
			fail(fmt.Errorf("walk copied %x with %d+%d peers, %d distinct", tr.Hash[:4], len(tr.Peers4), len(tr.Peers6), len(seen)))
		}
		return nil
	})
}

// stressEvent is one announce an announcer made, as it made it.
type stressEvent struct {
	req bittorrent.AnnounceRequest
}

// runAnnouncer announces its own peers, of both families, at random.
func runAnnouncer(s *Store, a int, hashes []bittorrent.InfoHash, peers, steps int, failed *atomic.Pointer[error], fail func(error)) []stressEvent {
	rng := rand.New(rand.NewPCG(uint64(a), 99))
	log := make([]stressEvent, 0, steps)
	var resp bittorrent.AnnounceResponse
	for step := range steps {
		if failed.Load() != nil {
			break
		}
		p := rng.IntN(peers)
		addr := netip.AddrFrom4([4]byte{203, 0, byte(a), byte(p)})
		if p%4 == 0 {
			addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xcc, byte(a), 15: byte(p)})
		}
		req := bittorrent.AnnounceRequest{
			InfoHash: hashes[rng.IntN(len(hashes))], Addr: addr, Port: 6881,
			Left: uint64(rng.IntN(2)), Event: bittorrent.Event(rng.IntN(5)), NumWant: 30, BothFamilies: true,
		}
		// Swarms swell and shrink in turns, so that lists move between
		// blocks, and shrink below blocks they have outgrown.
		if leaving := step/500%2 == 1; leaving != (req.Event == bittorrent.EventStopped) && rng.IntN(4) != 0 {
			req.Event = map[bool]bittorrent.Event{true: bittorrent.EventStopped, false: bittorrent.EventStarted}[leaving]
		}
		if err := s.Announce(&req, &resp); err != nil {
			fail(fmt.Errorf("announcer %d: %+v: %w", a, req, err))
			break
		}
		log = append(log, stressEvent{req})
	}
	return log
}

// stressReference replays the logs in a model: the anchors, and each
// announcer's events in its order.
func stressReference(logs [][]stressEvent, hashes []bittorrent.InfoHash) model {
	m := model{}
	for _, h := range hashes {
		m.announce(&bittorrent.AnnounceRequest{InfoHash: h, Addr: netip.MustParseAddr("2001:db8:aa::1"), Port: 1, Left: 1}, 0)
	}
	for _, log := range logs {
		for _, e := range log {
			m.announce(&e.req, 0)
		}
	}
	return m
}

// compareWithReference checks every torrent's peers, their roles (seeder,
// partial seed, downloader) and its downloaded count, as Walk hands them
// out, and its scrape (downloaders too), against the reference.
func compareWithReference(t *testing.T, s *Store, ref model) {
	t.Helper()
	got := model{}
	if _, err := s.Walk(func(tr *Torrent) error {
		mt := &modelTorrent{peers: map[netip.AddrPort]*modelPeer{}, downloaded: tr.Downloaded}
		for _, p := range tr.Peers4 {
			mt.peers[netip.AddrPortFrom(netip.AddrFrom4(p.IP), p.Port)] = &modelPeer{seeder: p.Seeder, partial: p.Partial}
		}
		for _, p := range tr.Peers6 {
			mt.peers[netip.AddrPortFrom(netip.AddrFrom16(p.IP), p.Port)] = &modelPeer{seeder: p.Seeder, partial: p.Partial}
		}
		got[tr.Hash] = mt
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ref) {
		t.Fatalf("%d torrents, reference %d", len(got), len(ref))
	}
	for h, want := range ref {
		have := got[h]
		if have == nil {
			t.Fatalf("torrent %x missing", h[:4])
		}
		if have.downloaded != want.downloaded {
			t.Errorf("torrent %x: downloaded %d, reference %d", h[:4], have.downloaded, want.downloaded)
		}
		for k, p := range want.peers {
			if q := have.peers[k]; q == nil || q.seeder != p.seeder || q.partial != p.partial {
				t.Errorf("torrent %x: peer %v is %+v, reference %+v", h[:4], k, q, p)
			}
		}
		for k := range have.peers {
			if want.peers[k] == nil {
				t.Errorf("torrent %x: peer %v is not in the reference", h[:4], k)
			}
		}
		if st, wantSt := scrape(s, h), ref.stats(h); st != wantSt {
			t.Errorf("torrent %x: scrape %+v, reference %+v", h[:4], st, wantSt)
		}
	}
}
