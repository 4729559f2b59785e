package swarm

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/offheap"
)

// Regression tests for defects found by attacking the store; each failed
// (most by crashing the process) before its fix.

// v6 is a public IPv6 address numbered n.
func v6(n int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// TestEmptiedFamilyRegrowsAfterSweep: one IPv6 peer keeps a torrent alive
// while its IPv4 peers all leave; the sweep then frees the shard's IPv4
// arena, and the next IPv4 peer must find a fresh block, not copy from
// where the emptied list used to be (a remote crash: slice bounds out of
// range in moveTo).
func TestEmptiedFamilyRegrowsAfterSweep(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	h := hashOf(21)
	announce(s, h, v6(1), 6881, 1, bittorrent.EventStarted, 0)
	for i := range 30 {
		announce(s, h, v4(i), 6881, 1, bittorrent.EventStarted, 0)
	}
	for i := range 30 {
		announce(s, h, v4(i), 6881, 1, bittorrent.EventStopped, 0)
	}
	s.Expire()
	checkInvariants(t, s)
	resp := announce(s, h, v4(99), 6881, 1, bittorrent.EventStarted, 50)
	if len(resp.Peers4) != 0 || resp.Incomplete != 2 {
		t.Fatalf("after the family emptied: %+v", resp)
	}
	if st := scrape(s, h); st.Incomplete != 2 {
		t.Fatalf("scrape %+v, want the IPv6 peer and the new IPv4 one", st)
	}
	checkInvariants(t, s)
}

// sameShard returns n info hashes that land in one shard of s.
func sameShard(s *Store, n int) []bittorrent.InfoHash {
	want := s.shardOf(s.hash(new(hashOf(0))))
	out := []bittorrent.InfoHash{hashOf(0)}
	for i := 1; len(out) < n; i++ {
		if h := hashOf(i); s.shardOf(s.hash(&h)) == want {
			out = append(out, h)
		}
	}
	return out
}

func restorePeers(t *testing.T, s *Store, h bittorrent.InfoHash, from, n int) {
	t.Helper()
	tr := Torrent{Hash: h}
	now := uint32(time.Now().Unix())
	for i := from; i < from+n; i++ {
		tr.Peers4 = append(tr.Peers4, SnapshotPeer4{IP: v4(i).As4(), Port: 6881, LastSeen: now})
	}
	if kept, err := s.Restore(&tr, 0, now); kept != n || err != nil {
		t.Fatalf("restored %d of %d peers: %v", kept, n, err)
	}
}

// TestRestoreIntoBlockThatCompactionShrinks: a load grows a list whose
// block is bigger than its peers need, just when the arena is due a
// compaction; the compaction shrinks the block, and the move must give
// back the shrunk size, not the one it read before (the arena's live
// count went wrong, and wrapped).
func TestRestoreIntoBlockThatCompactionShrinks(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	hs := sameShard(s, 2)
	a, b := hs[0], hs[1]
	restorePeers(t, s, a, 0, 1000) // one block, big enough for 1000
	for i := 10; i < 1000; i++ {   // 10 left in it
		announce(s, a, v4(i), 6881, 0, bittorrent.EventStopped, 0)
	}
	restorePeers(t, s, b, 5000, 3000) // then garbage: more than an eighth of what is live
	for i := 5000; i < 8000; i++ {
		announce(s, b, v4(i), 6881, 0, bittorrent.EventStopped, 0)
	}
	sh := s.shardOf(s.hash(&a))
	if g := sh.arena4.used - sh.arena4.live; g <= sh.arena4.garbageAllowed() {
		t.Fatalf("set-up: %d garbage records do not call for a compaction", g)
	}
	restorePeers(t, s, a, 20000, 2000)
	checkInvariants(t, s)
	if st := scrape(s, a); st.Complete+st.Incomplete != 2010 {
		t.Fatalf("scrape %+v, want 2010 peers", st)
	}
}

// TestSweepsNeverDropFreshPeers races sweeps against announces across
// second boundaries. No peer is older than a second, the TTL is an hour:
// a sweep that reads the clock before it takes the shard's lock, and waits
// for it behind an announce that read the next second, sees that peer as
// 65535 seconds old and drops it. The announcers share one swarm, so that
// the lock is contended and sweeps do wait.
func TestSweepsNeverDropFreshPeers(t *testing.T) {
	cfg := testConfig
	cfg.PeerTTL = time.Hour
	s := New(cfg)
	defer s.Close()
	const announcers, peers = 6, 50
	h := hashOf(100)
	request := func(a, p int) bittorrent.AnnounceRequest {
		return bittorrent.AnnounceRequest{InfoHash: h, Addr: v4(a<<8 | p), Port: 6881, Left: 1}
	}
	for a := range announcers {
		for p := range peers {
			req := request(a, p)
			s.Announce(&req, &bittorrent.AnnounceResponse{})
		}
	}
	// Two second boundaries at least, whatever the scheduler does.
	until := time.Now().Truncate(time.Second).Add(2*time.Second + 100*time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, announcers+1)
	for a := range announcers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp bittorrent.AnnounceResponse
			for round := 0; time.Now().Before(until); round++ {
				for p := range peers {
					req := request(a, p)
					if err := s.Announce(&req, &resp); err != nil {
						errs <- err
						return
					}
					if got := resp.Complete + resp.Incomplete; got != announcers*peers {
						errs <- fmt.Errorf("announcer %d, round %d: the swarm has %d peers, want %d: a sweep dropped fresh ones", a, round, got, announcers*peers)
						return
					}
				}
			}
		}()
	}
	// Sweep the swarm's shard over and over, as Expire sweeps each shard,
	// so that sweeps meet announces at every second boundary; and the
	// whole store now and then.
	sh, ttl := s.shardOf(s.hash(&h)), uint32(cfg.PeerTTL/time.Second)
	sweeps := 0
	for ; time.Now().Before(until); sweeps++ {
		n := 0
		if sweeps%1000 == 0 {
			n = s.Expire()
		}
		if n += sh.expire(s, ttl); n != 0 {
			errs <- fmt.Errorf("sweep %d dropped %d peers, none older than a second (TTL 1h)", sweeps, n)
			break
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.Peers() != announcers*peers {
		t.Errorf("%d peers at the end, want %d", st.Peers(), announcers*peers)
	}
	t.Logf("%d sweeps", sweeps)
}

// fakeClock replaces s's clock with one the test sets; only the test's
// goroutine may use s.
func fakeClock(s *Store, mono, unix uint32) *instant {
	c := &instant{mono: mono, unix: unix}
	s.clock = func() instant { return *c }
	return c
}

// TestWallClockStepsDoNotAgePeers: peers age on the monotonic clock; a
// wall clock stepped back or forward (NTP, an operator) neither expires
// fresh peers nor keeps old ones, and a save and load still carry ages.
func TestWallClockStepsDoNotAgePeers(t *testing.T) {
	cfg := testConfig
	cfg.PeerTTL = 10 * time.Minute
	s := New(cfg)
	defer s.Close()
	clock := fakeClock(s, 0, 1_800_000_000)
	h := hashOf(5)
	announce(s, h, v4(1), 6881, 1, 0, 0)
	clock.unix -= 3600 // stepped back an hour
	clock.mono += 5
	if n := s.Expire(); n != 0 {
		t.Fatalf("a wall clock stepped back expired %d fresh peers", n)
	}
	clock.unix += 2 * 86400 // and forward two days
	clock.mono += 5
	if n := s.Expire(); n != 0 {
		t.Fatalf("a wall clock stepped forward expired %d fresh peers", n)
	}
	var saved []SnapshotPeer4
	s.Walk(func(tr *Torrent) error { saved = append(saved, tr.Peers4...); return nil })
	if len(saved) != 1 || clock.unix-saved[0].LastSeen != 10 {
		t.Fatalf("saved %+v at unix %d: want last seen 10 s ago", saved, clock.unix)
	}
	clock.mono += 600 - 10 // 600 s since the announce: still within the TTL
	if n := s.Expire(); n != 0 {
		t.Fatalf("expired %d peers at exactly the TTL", n)
	}
	clock.mono++
	if n := s.Expire(); n != 1 {
		t.Fatalf("expired %d peers past the TTL, want 1", n)
	}
	checkInvariants(t, s)
}

// TestOutOfMemoryRefusesAndKeepsServing: when the kernel refuses memory,
// a newcomer that needs it is refused ("tracker is full") and counted;
// nothing else changes, what is held is served, and once memory is had
// again, newcomers are taken again.
func TestOutOfMemoryRefusesAndKeepsServing(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	h := hashOf(1)
	full := int(classCap[fitClass(40)]) // a block with no room left
	for i := range full {
		announce(s, h, v4(i), 6881, 1, 0, 0)
	}
	undo := offheap.InjectFaults(func(int) bool { return true })
	defer func() { undo() }()
	try := func(h bittorrent.InfoHash, addr netip.Addr) error {
		req := bittorrent.AnnounceRequest{InfoHash: h, Addr: addr, Port: 6881, Left: 1, NumWant: 50}
		var resp bittorrent.AnnounceResponse
		return s.Announce(&req, &resp)
	}
	// A new torrent needs a table; one more peer, a bigger block; a first
	// IPv6 peer, an arena.
	for name, err := range map[string]error{
		"new torrent":     try(hashOf(2), v4(1)),
		"bigger block":    try(h, v4(full)),
		"first IPv6 peer": try(h, v6(1)),
	} {
		if !errors.Is(err, ErrOutOfMemory) {
			t.Errorf("%s without memory: %v, want %v", name, err, ErrOutOfMemory)
		}
	}
	if err := try(h, v4(3)); err != nil { // a known peer needs nothing
		t.Fatalf("a known peer, without memory: %v", err)
	}
	st := s.Stats()
	if st.Peers() != full || st.Torrents != 1 || st.RefusedOutOfMemory != 3 || s.RefusedOutOfMemory() != 3 {
		t.Fatalf("after refusals: %+v", st)
	}
	checkInvariants(t, s)

	// A load keeps what fits.
	tr := Torrent{Hash: hashOf(3)}
	now := uint32(time.Now().Unix())
	for i := range 100 {
		tr.Peers4 = append(tr.Peers4, SnapshotPeer4{IP: v4(i).As4(), Port: 1, LastSeen: now})
	}
	if kept, err := s.Restore(&tr, 0, now); kept != 0 || !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("restore without memory: kept %d, %v", kept, err)
	}
	undo()
	undo = offheap.InjectFaults(func(bytes int) bool { return bytes > 64*8 })
	if kept, err := s.Restore(&tr, 0, now); kept == 0 || kept == 100 || !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("restore with room for some: kept %d, %v", kept, err)
	}
	checkInvariants(t, s)

	// No block past the largest class: refused, never an index past the
	// class table.
	sh := s.shardOf(s.hash(&h))
	v := sh.view4(s, sh.table.find(&h, s.hash(&h)))
	if v.moveTo(maxClass + 1) {
		t.Fatal("moved to a class past the largest")
	}
	v.reserve(1 << 31) // more than any class holds: a hint, refused here
	checkInvariants(t, s)

	undo()
	if err := try(hashOf(2), v4(1)); err != nil {
		t.Fatalf("with memory again: %v", err)
	}
	if err := try(h, v6(1)); err != nil {
		t.Fatalf("with memory again: %v", err)
	}
	checkInvariants(t, s)
}

// TestTableGrowthFailureKeepsTable: a table that cannot grow stays whole
// and findable.
func TestTableGrowthFailureKeepsTable(t *testing.T) {
	var tb table
	hashOf := func(h *bittorrent.InfoHash) uint64 {
		return (uint64(h[0]) | uint64(h[1])<<8 | uint64(h[2])<<16) * 0x9E3779B97F4A7C15
	}
	var hs []bittorrent.InfoHash
	for i := 0; ; i++ {
		h := bittorrent.InfoHash{byte(i), byte(i >> 8), byte(i >> 16)}
		if (tb.count+1)*maxLoadDen > len(tb.slots)*maxLoadNum && tb.count >= 1000 {
			undo := offheap.InjectFaults(func(int) bool { return true })
			at := tb.insert(&h, hashOf(&h), hashOf)
			undo()
			if at != -1 {
				t.Fatalf("insert without memory landed at %d", at)
			}
			break
		}
		if tb.insert(&h, hashOf(&h), hashOf) < 0 {
			t.Fatal("insert refused with memory")
		}
		hs = append(hs, h)
	}
	if tb.count != len(hs) {
		t.Fatalf("table counts %d, holds %d", tb.count, len(hs))
	}
	for _, h := range hs {
		if tb.find(&h, hashOf(&h)) < 0 {
			t.Fatalf("%x lost after a failed growth", h[:3])
		}
	}
	tb.free()
}

// TestRestoreNearTheEpoch: a machine with no clock yet (no RTC, before
// NTP) reads a time near 1970; a load then must keep fresh peers, not
// take them all as older than the TTL through a wrapped cutoff.
func TestRestoreNearTheEpoch(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	fakeClock(s, 0, 1000)
	tr := Torrent{Hash: hashOf(1), Peers4: []SnapshotPeer4{{IP: v4(1).As4(), Port: 1, LastSeen: 990}}}
	if kept, err := s.Restore(&tr, 0, 1000); kept != 1 || err != nil {
		t.Fatalf("restored at unix 1000: kept %d, %v", kept, err)
	}
}
