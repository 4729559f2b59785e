package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/swarm"
)

// fill announces n peers over torrents of 1 to 9 peers on tr.
func fill(t *testing.T, tr bittorrent.Tracker, n int) {
	t.Helper()
	for i := range n {
		announce(t, tr, hash(i/9), fmt.Sprintf("1.2.%d.%d", i/250, 1+i%250), uint16(1000+i%9), bittorrent.EventStarted)
	}
}

// totalPeers is the peers of the first n/9+1 torrents of a store.
func totalPeers(tn *testNode, n int) int {
	total := 0
	for i := range n/9 + 1 {
		total += peers(tn.store, hash(i))
	}
	return total
}

// TestSnapshotChunksAndBuffer: a node that starts gets a snapshot in
// several chunks; an announce made while it applies the snapshot is held
// and applied after it, so a peer stopped meanwhile stays gone.
func TestSnapshotChunksAndBuffer(t *testing.T) {
	_, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, func(o *Options) { o.SnapshotChunkBytes = 4096 })
	const n = 3000
	fill(t, a.store, n) // straight into the store: not published
	var hold *holdFirst
	b := newNode(t, url, "b", func(s bittorrent.Tracker) bittorrent.Tracker { hold = holding(s); return hold }, nil)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	<-hold.entered // B is applying the snapshot's first record
	announce(t, a.front, hash(0), "1.2.0.1", 1000, bittorrent.EventStopped)
	announce(t, a.front, hash(100000), "5.6.7.8", 1, bittorrent.EventStarted)
	waitFor(t, "B holding A's batch", func() bool {
		b.rx.mu.Lock()
		defer b.rx.mu.Unlock()
		return len(b.rx.buffer) > 0
	})
	close(hold.release)
	<-b.Ready()
	st, sa := b.Stats(), a.Stats()
	// A walks its store as B acknowledges chunks: the peer stopped
	// meanwhile is in the snapshot or not, depending on its shard.
	if st.CatchUps != 1 || st.SnapshotPeers < n-1 || sa.SnapshotsServed != 1 {
		t.Fatalf("B caught up %d times with %d peers, A served %d", st.CatchUps, st.SnapshotPeers, sa.SnapshotsServed)
	}
	if sa.BytesOut < 3*4096 {
		t.Errorf("A sent %d bytes: not several chunks", sa.BytesOut)
	}
	waitFor(t, "the buffered batch applied", func() bool { return peers(b.store, hash(100000)) == 1 })
	if got := totalPeers(b, n); got != n-1 {
		t.Errorf("B holds %d peers, want %d (the stopped one gone)", got, n-1)
	}
}

// TestSecondSnapshotRefused: a node serving a snapshot answers busy to
// another request, and serves again once it is done.
func TestSecondSnapshotRefused(t *testing.T) {
	_, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, nil)
	fill(t, a.store, 10)
	var hold *holdFirst
	b := newNode(t, url, "b", func(s bittorrent.Tracker) bittorrent.Tracker { hold = holding(s); return hold }, nil)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	<-hold.entered // A is serving B
	nc := rawConn(t, url)
	for i := range 50 { // the queue group may pick B, which is not ready: busy too
		data, err := askSnapshot(t, nc, "c", i)
		if err != nil || len(data) != 1 || data[0] != msgBusy {
			t.Fatalf("a second request answered %q, %v", data, err)
		}
		if a.Stats().SnapshotsRefused > 0 {
			break
		}
	}
	if a.Stats().SnapshotsRefused == 0 {
		t.Fatal("A never refused")
	}
	close(hold.release)
	<-b.Ready()
	c := startNode(t, url, "c", nil, nil)
	waitFor(t, "C caught up", func() bool { return c.Stats().CatchUps == 1 && totalPeers(c, 10) == 10 })
}

// TestReconnectCatchesUp: NATS goes down; A keeps serving and takes an
// announce; NATS comes back on the same port after B has stopped counting
// A live (so that B, back first, may find nobody to ask and must catch up
// when A is heard again); B catches up, the outage's announce included.
func TestReconnectCatchesUp(t *testing.T) {
	srv, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, nil)
	b := startNode(t, url, "b", nil, nil)
	announce(t, a.front, hash(1), "1.2.3.4", 1, bittorrent.EventStarted)
	waitFor(t, "the first peer on B", func() bool { return peers(b.store, hash(1)) == 1 })
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, "both disconnected", func() bool { return !a.Stats().Connected && !b.Stats().Connected })
	announce(t, a.front, hash(2), "1.2.3.5", 2, bittorrent.EventStarted)
	if peers(a.store, hash(2)) != 1 {
		t.Fatal("A did not serve with NATS down")
	}
	waitFor(t, "B counting A gone", func() bool { return b.Stats().Nodes == 1 })
	before := b.Stats().CatchUps
	_, url2 := runServer(t, port)
	if url2 != url {
		t.Fatalf("restarted on %s, not %s", url2, url)
	}
	waitFor(t, "the outage's peer on B", func() bool { return peers(b.store, hash(2)) == 1 })
	waitFor(t, "B counting its catch-up", func() bool { return b.Stats().CatchUps > before && b.Stats().Connected })
}

// TestStartWithNATSDown: a node whose NATS is down at start is ready at
// once and serves alone; once NATS is up it joins, and a node started
// then catches up from it.
func TestStartWithNATSDown(t *testing.T) {
	srv, url := runServer(t, -1)
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	b := newNode(t, url, "b", nil, nil)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	<-b.Ready()
	announce(t, b.front, hash(1), "1.2.3.4", 1, bittorrent.EventStarted)
	if b.Stats().Connected || peers(b.store, hash(1)) != 1 {
		t.Fatal("B not serving alone")
	}
	runServer(t, port)
	waitFor(t, "B connected", func() bool { return b.Stats().Connected })
	a := startNode(t, url, "a", nil, nil)
	waitFor(t, "A caught up from B", func() bool { return peers(a.store, hash(1)) == 1 && a.Stats().CatchUps == 1 })
}

// TestCloseWithNATSDown: with NATS gone, Close does not wait for a flush
// that cannot go out: the tracker's stop is not held up by the cluster.
func TestCloseWithNATSDown(t *testing.T) {
	srv, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, nil)
	announce(t, a.front, hash(1), "1.2.3.4", 1, bittorrent.EventStarted)
	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, "A disconnected", func() bool { return !a.Stats().Connected })
	start := time.Now()
	a.Close()
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("Close took %v with NATS down", took)
	}
}

// TestOutageAnnouncesReachEveryNode: NATS goes down; each of three nodes
// takes an announce of its own; NATS comes back. Every node ends up with
// all three: a snapshot from one node holds that node's outage announces,
// not a third's, so each node sends its own once reconnected.
func TestOutageAnnouncesReachEveryNode(t *testing.T) {
	srv, url := runServer(t, -1)
	nodes := []*testNode{startNode(t, url, "a", nil, nil), startNode(t, url, "b", nil, nil), startNode(t, url, "c", nil, nil)}
	for _, n := range nodes { // each knows the others before the outage: it awaits them after
		waitFor(t, n.opts.Node+" hearing the others", func() bool { return n.Stats().Nodes == 3 })
	}
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	for i, n := range nodes {
		waitFor(t, "disconnected", func() bool { return !n.Stats().Connected })
		announce(t, n.front, hash(i), fmt.Sprintf("1.2.3.%d", i+1), 1, bittorrent.EventStarted)
	}
	runServer(t, port)
	for _, n := range nodes {
		waitFor(t, "every outage announce on "+n.opts.Node, func() bool {
			return peers(n.store, hash(0)) == 1 && peers(n.store, hash(1)) == 1 && peers(n.store, hash(2)) == 1
		})
	}
	for _, n := range nodes {
		waitFor(t, n.opts.Node+"'s outage announce published", func() bool { return n.Stats().Published == 1 })
		if st := n.Stats(); st.Dropped != 0 {
			t.Errorf("%s dropped %d records", n.opts.Node, st.Dropped)
		}
	}
}

// TestSnapshotCarriesCounts: a node that joins gets each torrent's
// completion count with its peers, over several lists of counts, and
// counts completions afterwards from there: its scrapes agree with the
// node it caught up from.
func TestSnapshotCarriesCounts(t *testing.T) {
	_, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, func(o *Options) { o.SnapshotChunkBytes = 512 })
	const torrents = 120 // more counts than a 512-byte list holds
	for i := range torrents {
		for j := range i%3 + 1 {
			complete(t, a.store, hash(i), fmt.Sprintf("1.2.%d.%d", i, j+1), 1)
		}
	}
	b := startNode(t, url, "b", nil, nil)
	if st := b.Stats(); st.CatchUps != 1 || st.BadBatches != 0 {
		t.Fatalf("B caught up %d times, %d bad batches", st.CatchUps, st.BadBatches)
	}
	for i := range torrents {
		h := hash(i)
		sa, _ := a.store.Scrape(&h)
		sb, _ := b.store.Scrape(&h)
		if sb != sa || sa.Downloaded != uint32(i%3+1) {
			t.Fatalf("torrent %d: B scrapes %+v, A %+v", i, sb, sa)
		}
	}
	complete(t, a.front, hash(0), "1.2.0.9", 1)
	h := hash(0)
	waitFor(t, "the next completion counted on B", func() bool { s, _ := b.store.Scrape(&h); return s.Downloaded == 2 })
}

// complete announces a completion (left 0) on tr.
func complete(t *testing.T, tr bittorrent.Tracker, h bittorrent.InfoHash, addr string, port uint16) {
	t.Helper()
	req := bittorrent.AnnounceRequest{InfoHash: h, Addr: netip.MustParseAddr(addr), Port: port, Event: bittorrent.EventCompleted}
	var resp bittorrent.AnnounceResponse
	if err := tr.Announce(&req, &resp); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotRunsKeepTheRules: a snapshot's runs go into the store at
// once only as the access list and the limits allow; the rest go one by
// one, refused and counted.
func TestSnapshotRunsKeepTheRules(t *testing.T) {
	_, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, nil)
	fill(t, a.store, 90) // 10 torrents of 9 peers
	cfg := storeConfig
	cfg.MaxTorrents = 5
	limited := swarm.New(cfg)
	t.Cleanup(limited.Close)
	denied := hash(1)
	admit := func(h *bittorrent.InfoHash) error {
		if *h == denied {
			return errors.New("not on the list")
		}
		return nil
	}
	b := startNode(t, url, "b", nil, func(o *Options) {
		o.Apply, o.ApplyTorrent = Admitting(admit, limited), StoreApplyTorrent(limited, admit)
	})
	peersHeld, torrents := limited.Totals()
	if st, _ := limited.Scrape(&denied); st.Complete+st.Incomplete != 0 {
		t.Error("a torrent the access list refuses came in")
	}
	if torrents > cfg.MaxTorrents+maxAppliers { // read, not reserved: a run an applier at most
		t.Errorf("%d torrents past max_torrents %d", torrents, cfg.MaxTorrents)
	}
	if st := b.Stats(); st.Refused == 0 || int64(st.SnapshotPeers) != peersHeld || int(st.SnapshotPeers+st.Refused) != 90 {
		t.Errorf("snapshot peers %d, refused %d, held %d: want all 90 accounted for", st.SnapshotPeers, st.Refused, peersHeld)
	}
}
