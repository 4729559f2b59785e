package swarm

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/offheap"
)

// FuzzStoreOperations decodes its input into a sequence of operations on
// the store — announces with every event over both families, bursts that
// grow one family of a swarm past the index threshold and then empty it,
// clock steps (the monotonic clock forwards, the wall clock either way),
// expiry sweeps, forced compactions, Walk/Restore round trips into an
// empty and into a non-empty store, limits and refused memory — and checks
// every step against the map model: counts, scrapes, reply membership and
// the arena's own accounting. The race detector cannot see into off-heap
// memory; this can.
func FuzzStoreOperations(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t, data)
		defer h.close()
		for step := 0; step < maxFuzzSteps && h.in.more(); step++ {
			h.step()
		}
	})
}

const maxFuzzSteps = 200

// Operation codes: the first byte of each step, modulo opCount.
const (
	opAnnounce = iota
	opBurst
	opEmpty
	opClock
	opSweep
	opCompact
	opRoundTrip
	opMerge
	opLimits
	opFaults
	opTTL
	opRestoreSelf
	opThin
	opCount
)

// fuzzInput hands out the input a byte at a time, zeros once it is spent.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) more() bool { return len(in.b) > 0 }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fuzzInput) intn(n int) int { return int(in.byte()) % n }

// fuzzTorrents are few, so that most live alone in their shard, where an
// emptied family frees the shard's whole arena.
var fuzzTorrents = func() (hs [4]bittorrent.InfoHash) {
	for i := range hs {
		hs[i] = hashOf(9000 + i)
	}
	return hs
}()

// fuzzAddrs mix public, private, loopback and link-local addresses of
// both families, so that replies filter by reach.
var fuzzAddrs = func() (as []netip.Addr) {
	for _, a := range []string{"203.0.113.1", "203.0.113.2", "198.51.100.7", "10.0.0.1", "192.168.1.1", "127.0.0.1",
		"2001:db8::1", "2001:db8::2", "2001:db8::3", "fd00::1", "fe80::1", "::1"} {
		as = append(as, netip.MustParseAddr(a))
	}
	return as
}()

// burstAddr is the i-th peer of a burst: public, distinct per family.
func burstAddr(ipv6 bool, i int) netip.Addr {
	if ipv6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xbb, 14: byte(i >> 8), 15: byte(i)})
	}
	return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
}

var fuzzTTLs = [...]uint32{1, 5, 60, 600, 3600, uint32(MaxPeerTTL / time.Second)}

// harness runs one input: the store under test and the model beside it,
// on a clock the input moves.
type harness struct {
	t         *testing.T
	in        fuzzInput
	cfg       Config
	s         *Store
	clock     *instant
	m         model // seen times in seconds of clock.mono
	lastSweep uint32
	faulty    bool
	undo      func()
	refused   Stats  // the refusals the store must have counted
	slack     uint32 // garbageSlack to put back
	resp      bittorrent.AnnounceResponse
}

func newHarness(t *testing.T, data []byte) *harness {
	h := &harness{t: t, in: fuzzInput{data}, m: model{}}
	h.cfg = testConfig
	h.cfg.NumWantMax = 60
	h.cfg.PeerTTL = time.Duration(fuzzTTLs[h.in.intn(len(fuzzTTLs))]) * time.Second
	h.cfg.PrivatePeers = h.in.intn(2) == 1
	// Compactions at every turn, or as in production.
	h.slack, garbageSlack = garbageSlack, []uint32{0, 4, 32, 256}[h.in.intn(4)]
	h.s = New(h.cfg)
	h.clock = fakeClock(h.s, 0, 1_800_000_000)
	return h
}

func (h *harness) close() {
	garbageSlack = h.slack
	h.setFaults(false)
	h.s.Close()
}

func (h *harness) ttl() uint32 { return uint32(h.cfg.PeerTTL / time.Second) }

func (h *harness) step() {
	switch h.in.intn(opCount) {
	case opAnnounce:
		h.announce(h.request())
	case opBurst:
		h.burst()
	case opEmpty:
		h.empty()
	case opClock:
		h.stepClock()
	case opSweep:
		h.sweep()
	case opCompact:
		h.compact()
	case opRoundTrip:
		h.roundTrip(false)
	case opMerge:
		h.roundTrip(true)
	case opLimits:
		h.limits()
	case opFaults:
		h.setFaults(h.in.intn(2) == 0)
	case opThin:
		h.thin()
	case opRestoreSelf:
		h.restoreSelf()
	case opTTL:
		h.cfg.PeerTTL = time.Duration(fuzzTTLs[h.in.intn(len(fuzzTTLs))]) * time.Second
		h.s.SetConfig(h.cfg)
		h.keepSweeping(0)
	}
	h.check()
}

func (h *harness) request() bittorrent.AnnounceRequest {
	return bittorrent.AnnounceRequest{
		InfoHash:     fuzzTorrents[h.in.intn(len(fuzzTorrents))],
		Addr:         fuzzAddrs[h.in.intn(len(fuzzAddrs))],
		Port:         uint16(1 + h.in.intn(4)),
		Left:         uint64(h.in.intn(2)),
		Event:        bittorrent.Event(h.in.intn(5)), // none, completed, started, stopped, paused
		NumWant:      []int32{-1, 0, 1, 5, 80}[h.in.intn(5)],
		BothFamilies: h.in.intn(2) == 0,
		Counted:      h.in.intn(4) == 0, // a cluster's completion, counted where it was taken
	}
}

// announce sends req to the store and the model, and checks the reply,
// or that a refusal was due.
func (h *harness) announce(req bittorrent.AnnounceRequest) {
	t := h.t
	err := h.s.Announce(&req, &h.resp)
	tr := h.m[req.InfoHash]
	key := netip.AddrPortFrom(req.Addr, req.Port)
	joins := req.Event != bittorrent.EventStopped && (tr == nil || tr.peers[key] == nil)
	peers, torrents := h.m.size()
	switch {
	case joins && tr == nil && int64(torrents) >= h.cfg.MaxTorrents:
		if err != ErrTooManyTorrents {
			t.Fatalf("%+v past max_torrents %d: %v", req, h.cfg.MaxTorrents, err)
		}
		h.refused.RefusedTorrents++
	// A new torrent needs its table slot before its first peer is
	// counted: memory may be refused first.
	case errors.Is(err, ErrOutOfMemory) && h.faulty && joins && (tr == nil || int64(peers) < h.cfg.MaxPeers):
		h.refused.RefusedOutOfMemory++ // and nothing changed
	case joins && int64(peers) >= h.cfg.MaxPeers:
		if err != ErrTooManyPeers {
			t.Fatalf("%+v past max_peers %d: %v", req, h.cfg.MaxPeers, err)
		}
		h.refused.RefusedPeers++
	case err == nil:
		if counted := h.m.announce(&req, int64(h.clock.mono)); counted != h.resp.Counted {
			t.Fatalf("%+v: the reply says counted %v, the model %v", req, h.resp.Counted, counted)
		}
		checkReply(t, 0, h.m, &req, &h.resp, numWant(&req, &h.cfg), h.cfg.PrivatePeers)
	default:
		t.Fatalf("%+v: %v (faults %v, joins %v)", req, err, h.faulty, joins)
	}
}

func (m model) size() (peers, torrents int) {
	for _, t := range m {
		peers += len(t.peers)
	}
	return peers, len(m)
}

// burst grows one family of a torrent by 40 to 100 peers, across the
// index threshold and several block classes: all seeders, all
// downloaders, or partial seeds and seeders in turn.
func (h *harness) burst() {
	hash := fuzzTorrents[h.in.intn(len(fuzzTorrents))]
	ipv6, n, mode := h.in.intn(2) == 1, 40+h.in.intn(61), h.in.intn(3)
	for i := range n {
		req := bittorrent.AnnounceRequest{InfoHash: hash, Addr: burstAddr(ipv6, i), Port: 6881, Left: uint64(mode & 1), NumWant: 5}
		if mode == 2 && i%2 == 0 {
			req.Left, req.Event = 1, bittorrent.EventPaused
		}
		h.announce(req)
	}
}

// empty stops every peer of one family of a torrent.
func (h *harness) empty() {
	hash := fuzzTorrents[h.in.intn(len(fuzzTorrents))]
	h.stopSome(hash, h.in.intn(2) == 1, 1)
}

// thin stops one peer in every 2 to 8 of one family of a torrent: the
// list keeps a block bigger than it needs, until the next compaction.
func (h *harness) thin() {
	hash := fuzzTorrents[h.in.intn(len(fuzzTorrents))]
	h.stopSome(hash, h.in.intn(2) == 1, 2+h.in.intn(7))
}

// stopSome stops every k-th peer of one family of a torrent, in address
// order, so that an input always does the same.
func (h *harness) stopSome(hash bittorrent.InfoHash, ipv6 bool, k int) {
	tr := h.m[hash]
	if tr == nil {
		return
	}
	var family []netip.AddrPort
	for key := range tr.peers {
		if key.Addr().Is6() == ipv6 {
			family = append(family, key)
		}
	}
	slices.SortFunc(family, netip.AddrPort.Compare)
	for i, key := range family {
		if i%k == 0 {
			h.announce(bittorrent.AnnounceRequest{InfoHash: hash, Addr: key.Addr(), Port: key.Port(), Event: bittorrent.EventStopped})
		}
	}
}

// stepClock moves the monotonic clock forwards and the wall clock either
// way, by different amounts: peers must age by the first alone.
func (h *harness) stepClock() {
	forward := uint32(h.in.byte()) * uint32(1+h.in.intn(16))
	wall := (int32(h.in.byte()) - 128) * 60
	h.keepSweeping(forward)
	h.clock.mono += forward
	h.clock.unix = uint32(int32(h.clock.unix) + wall)
}

// keepSweeping sweeps, before the clock moves forward by the given
// seconds, if it must, as the daemon's sweeps do: often enough that no
// peer's 16-bit age can wrap before a sweep has seen it past the TTL.
func (h *harness) keepSweeping(forward uint32) {
	if uint64(h.clock.mono-h.lastSweep)+uint64(forward)+uint64(h.ttl()) >= 1<<16 {
		h.sweep()
	}
}

func (h *harness) sweep() {
	h.s.Expire()
	h.m.expire(int64(h.clock.mono), h.cfg.PeerTTL)
	h.lastSweep = h.clock.mono
}

// compact compacts every arena of the store now, as a sweep or a growth
// would, moving every block.
func (h *harness) compact() {
	for i := range h.s.shards {
		sh := &h.s.shards[i]
		sh.mu.Lock()
		sh.arena4.compact(&sh.table, ipv4, h.s.peerSeed)
		sh.arena6.compact(&sh.table, ipv6, h.s.peerSeed)
		sh.mu.Unlock()
	}
}

func (h *harness) limits() {
	peers, torrents := h.m.size()
	h.cfg.MaxPeers, h.cfg.MaxTorrents = testConfig.MaxPeers, testConfig.MaxTorrents
	if h.in.intn(2) == 0 {
		h.cfg.MaxPeers = int64(peers + h.in.intn(3))
	}
	if h.in.intn(2) == 0 {
		h.cfg.MaxTorrents = int64(torrents + h.in.intn(2))
	}
	h.s.SetConfig(h.cfg)
}

// setFaults makes the kernel refuse memory: every allocation, or those
// past a size the input picks.
func (h *harness) setFaults(on bool) {
	if h.undo != nil {
		h.undo()
		h.undo = nil
	}
	h.faulty = on
	if on {
		limit := int(h.in.byte()) * 64
		h.undo = offheap.InjectFaults(func(bytes int) bool { return bytes > limit })
	}
}

// roundTrip saves the store with Walk and restores it, in chunks, into a
// new store whose clock started elsewhere: empty, or (merge) holding
// peers of its own, which keep their state where both have one.
func (h *harness) roundTrip(merge bool) {
	saved := h.snapshot()
	old, oldMono := h.m, int64(h.clock.mono)
	h.s.Close()
	h.s, h.m, h.refused = New(h.cfg), model{}, Stats{}
	h.clock = fakeClock(h.s, uint32(h.in.byte())*300, h.clock.unix)
	h.lastSweep = h.clock.mono
	if merge {
		for range h.in.intn(12) {
			h.announce(h.request())
		}
	}
	for i := range saved {
		h.restore(&saved[i], old[saved[i].Hash], oldMono)
	}
}

// snapshot is a copy of the store as Walk hands it out.
func (h *harness) snapshot() (saved []Torrent) {
	if _, err := h.s.Walk(func(tr *Torrent) error {
		c := *tr
		c.Peers4, c.Peers6 = append([]SnapshotPeer4(nil), tr.Peers4...), append([]SnapshotPeer6(nil), tr.Peers6...)
		saved = append(saved, c)
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return saved
}

// restoreSelf restores the store's own snapshot into it, as a merge of a
// file into a live store would: every peer is a repeat, so nothing
// changes, but room is made for them first, in lists that churn may have
// left in blocks far bigger than they need.
func (h *harness) restoreSelf() {
	saved := h.snapshot()
	for i := range saved {
		h.restore(&saved[i], h.m[saved[i].Hash], int64(h.clock.mono))
	}
}

// restore puts one saved torrent back a chunk and a family at a time, as
// the loader does, applying to the model the peers the store says it kept:
// with memory refused, the first of those that qualify.
func (h *harness) restore(saved *Torrent, was *modelTorrent, wasMono int64) {
	chunk := 1 + h.in.intn(40)
	for from := 0; from < len(saved.Peers4); from += chunk {
		part := Torrent{Hash: saved.Hash, Downloaded: saved.Downloaded, Peers4: saved.Peers4[from:min(from+chunk, len(saved.Peers4))]}
		h.restoreChunk(&part, was, wasMono)
	}
	for from := 0; from < len(saved.Peers6); from += chunk {
		part := Torrent{Hash: saved.Hash, Downloaded: saved.Downloaded, Peers6: saved.Peers6[from:min(from+chunk, len(saved.Peers6))]}
		h.restoreChunk(&part, was, wasMono)
	}
}

func (h *harness) restoreChunk(part *Torrent, was *modelTorrent, wasMono int64) {
	t := h.t
	cutoff := h.clock.unix - h.ttl()
	kept, err := h.s.Restore(part, cutoff, h.clock.unix)
	if err != nil && !(h.faulty && errors.Is(err, ErrOutOfMemory)) {
		t.Fatalf("restore: %v (faults %v)", err, h.faulty)
	}
	tr := h.m[part.Hash]
	if tr == nil {
		tr = &modelTorrent{peers: map[netip.AddrPort]*modelPeer{}}
	}
	took := 0
	take := func(k netip.AddrPort, seeder, partial bool, lastSeen uint32) {
		if lastSeen < cutoff || tr.peers[k] != nil || took == kept {
			return
		}
		if w := was.peers[k]; w == nil || w.seeder != seeder || w.partial != partial || int64(h.clock.unix-lastSeen) != wasMono-w.seen {
			t.Fatalf("walk handed out %v seeder %v partial %v last seen %d, which the model does not hold", k, seeder, partial, lastSeen)
		}
		tr.peers[k] = &modelPeer{seeder: seeder, partial: partial, seen: int64(h.clock.mono) - int64(h.clock.unix-lastSeen)}
		took++
	}
	for _, p := range part.Peers4 {
		take(netip.AddrPortFrom(netip.AddrFrom4(p.IP), p.Port), p.Seeder, p.Partial, p.LastSeen)
	}
	for _, p := range part.Peers6 {
		take(netip.AddrPortFrom(netip.AddrFrom16(p.IP), p.Port), p.Seeder, p.Partial, p.LastSeen)
	}
	if took != kept {
		t.Fatalf("restore kept %d peers, %d qualified (error %v)", kept, took, err)
	}
	if len(tr.peers) > 0 {
		tr.downloaded = max(tr.downloaded, part.Downloaded)
		h.m[part.Hash] = tr
	}
}

// check compares the store with the model and verifies its layout.
func (h *harness) check() {
	t := h.t
	checkCounts(t, 0, h.s, h.m, fuzzTorrents[:])
	st := h.s.Stats()
	if st.RefusedPeers != h.refused.RefusedPeers || st.RefusedTorrents != h.refused.RefusedTorrents || st.RefusedOutOfMemory != h.refused.RefusedOutOfMemory {
		t.Fatalf("refusals counted %+v, made %+v", st, h.refused)
	}
	peers, torrents := h.m.size()
	if h.s.totals.peers.Load() != int64(peers) || h.s.totals.torrents.Load() != int64(torrents) {
		t.Fatalf("totals %d peers, %d torrents; model %d, %d", h.s.totals.peers.Load(), h.s.totals.torrents.Load(), peers, torrents)
	}
	for i := range fuzzTorrents {
		if err := h.s.shardOf(h.s.hash(&fuzzTorrents[i])).invariantsErr(h.s); err != nil {
			t.Fatal(err)
		}
	}
}

// Seeds: each a sequence written with the helpers below.
type seedWriter []byte

func (w *seedWriter) op(code int, args ...byte) {
	*w = append(*w, byte(code))
	*w = append(*w, args...)
}

// announceOp: torrent, address index, port-1, left, event, numwant index,
// both (0: both families).
func (w *seedWriter) announce(torrent, addr, port, left int, ev bittorrent.Event) {
	w.op(opAnnounce, byte(torrent), byte(addr), byte(port-1), byte(left), byte(ev), 4, 0)
}

func fuzzSeeds() [][]byte {
	var seeds [][]byte
	// The remote crash: one IPv6 peer keeps the torrent; 30 IPv4 peers
	// come and go; a sweep frees the IPv4 arena; one more IPv4 peer.
	{
		w := seedWriter{3, 0, 3} // TTL 600 s, private peers off, slack as in production
		w.announce(0, 6, 1, 1, bittorrent.EventStarted)
		w.op(opBurst, 0, 0, 0, 1) // 40 peers
		w.op(opEmpty, 0, 0)
		w.op(opSweep)
		w.announce(0, 0, 1, 1, bittorrent.EventStarted)
		seeds = append(seeds, w)
	}
	// A load into a block compaction shrinks: a big block nearly
	// emptied, garbage, then a chunked round trip.
	{
		w := seedWriter{2, 1, 1}
		w.op(opBurst, 0, 0, 60, 0)
		w.op(opEmpty, 0, 0)
		w.op(opBurst, 0, 0, 50, 1)
		w.op(opBurst, 1, 0, 60, 1)
		w.op(opEmpty, 1, 0)
		w.op(opRoundTrip, 0, 7)
		w.op(opMerge, 3, 5, 9)
		seeds = append(seeds, w)
	}
	// A list left in a block far bigger than it needs, in an arena due a
	// compaction, asked to make room by a restore: the move must give up
	// the block the compaction left it, not the one it had.
	{
		w := seedWriter{2, 0, 0} // TTL 60 s, compactions at every turn
		w.op(opBurst, 0, 0, 60, 1)
		w.op(opThin, 0, 0, 6) // 87 of 100 left, in a block for 121
		w.op(opRestoreSelf, 39)
		seeds = append(seeds, w)
	}
	// Clock steps: the wall clock back an hour and forward, peers kept;
	// then past the TTL, peers gone.
	{
		w := seedWriter{1, 0, 3} // TTL 5 s
		w.announce(1, 0, 1, 0, bittorrent.EventNone)
		w.announce(1, 7, 2, 1, bittorrent.EventPaused)
		w.op(opClock, 1, 0, 68)
		w.op(opSweep)
		w.op(opClock, 6, 0, 200)
		w.op(opSweep)
		seeds = append(seeds, w)
	}
	// Partial seeds: a burst of them among seeders past the index
	// threshold, downloaders joining, partial seeds becoming downloaders
	// and seeders and back, stopping, a sweep and a round trip.
	{
		w := seedWriter{3, 0, 0} // TTL 600 s, compactions at every turn
		w.op(opBurst, 0, 0, 20, 2)
		w.announce(0, 0, 1, 1, bittorrent.EventNone)
		w.announce(0, 1, 1, 1, bittorrent.EventPaused)
		w.announce(0, 6, 1, 1, bittorrent.EventPaused)
		w.announce(0, 1, 1, 0, bittorrent.EventPaused)
		w.announce(0, 1, 1, 1, bittorrent.EventPaused)
		w.announce(0, 0, 1, 1, bittorrent.EventPaused)
		w.announce(0, 1, 1, 1, bittorrent.EventStarted)
		w.op(opThin, 0, 0, 2)
		w.op(opRoundTrip, 0, 7)
		w.announce(0, 0, 1, 1, bittorrent.EventStopped)
		w.op(opClock, 200, 3, 128)
		w.op(opSweep)
		seeds = append(seeds, w)
	}
	// Memory refused mid-growth and mid-load, then given again.
	{
		w := seedWriter{4, 1, 2}
		w.op(opBurst, 2, 1, 30, 0)
		w.op(opFaults, 0, 2)
		w.op(opBurst, 2, 1, 60, 1)
		w.op(opBurst, 3, 0, 10, 0)
		w.op(opRoundTrip, 2, 3)
		w.op(opFaults, 1)
		w.op(opBurst, 3, 0, 10, 0)
		w.op(opLimits, 0, 1, 0, 0)
		w.announce(0, 1, 2, 0, bittorrent.EventCompleted)
		seeds = append(seeds, w)
	}
	return seeds
}
