package cluster

import (
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
)

// TestSubjectMismatchDropped: a batch whose header names another node
// than its subject is refused whole and counted.
func TestSubjectMismatchDropped(t *testing.T) {
	_, url := runServer(t, -1)
	b := startNode(t, url, "b", nil, nil)
	nc := rawConn(t, url)
	if err := nc.Publish("trakx.x.announce", batchOf("y", 1, record(hash(1), "1.2.3.4", 1))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the batch counted bad", func() bool { return b.Stats().BadBatches == 1 })
	if peers(b.store, hash(1)) != 0 || b.Stats().Applied != 0 {
		t.Error("a record of a mismatched batch was applied")
	}
}

// TestMalformedCounted: garbage, a later format and a malformed record are
// counted; the valid records around them are applied; nothing crashes.
func TestMalformedCounted(t *testing.T) {
	_, url := runServer(t, -1)
	b := startNode(t, url, "b", nil, nil)
	nc := rawConn(t, url)
	bad := record(hash(2), "1.2.3.4", 0) // port 0
	for _, msg := range [][]byte{nil, {0xff, 1, 'x'}, {wire.Format, 200}, batchOf("x", 1, record(hash(1), "1.2.3.4", 1), bad, record(hash(3), "1.2.3.5", 2))} {
		if err := nc.Publish("trakx.x.announce", msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the valid records applied", func() bool { return b.Stats().Applied == 2 })
	st := b.Stats()
	if st.BadBatches != 3 || st.Dropped != 1 {
		t.Errorf("bad batches %d (want 3), dropped %d (want 1)", st.BadBatches, st.Dropped)
	}
	if peers(b.store, hash(1)) != 1 || peers(b.store, hash(3)) != 1 || peers(b.store, hash(2)) != 0 {
		t.Error("wrong peers applied")
	}
}

// TestIdempotent: the same batch applied twice leaves the store as once.
func TestIdempotent(t *testing.T) {
	_, url := runServer(t, -1)
	b := startNode(t, url, "b", nil, nil)
	nc := rawConn(t, url)
	seed := record(hash(1), "1.2.3.4", 1)
	seed.Seeder, seed.Event = true, bittorrent.EventCompleted
	msg := batchOf("x", 1, seed, record(hash(1), "1.2.3.5", 2), record(hash(2), "1.2.3.6", 3))
	scrape := func() [2]bittorrent.ScrapeStats {
		h1, h2 := hash(1), hash(2)
		s1, _ := b.store.Scrape(&h1)
		s2, _ := b.store.Scrape(&h2)
		return [2]bittorrent.ScrapeStats{s1, s2}
	}
	_ = nc.Publish("trakx.x.announce", msg)
	waitFor(t, "the first copy applied", func() bool { return b.Stats().Applied == 3 })
	once := scrape()
	_ = nc.Publish("trakx.x.announce", msg)
	waitFor(t, "the second copy applied", func() bool { return b.Stats().Applied == 6 })
	if twice := scrape(); twice != once {
		t.Errorf("after twice %+v, after once %+v", twice, once)
	}
	if once[0].Downloaded != 1 || once[0].Complete != 1 || once[0].Incomplete != 1 {
		t.Errorf("torrent 1: %+v", once[0])
	}
}

// TestRefusedCounted: what Apply refuses (the store full) is counted.
func TestRefusedCounted(t *testing.T) {
	_, url := runServer(t, -1)
	b := startNode(t, url, "b", nil, nil)
	cfg := storeConfig
	cfg.MaxTorrents = 1
	b.store.SetConfig(cfg)
	nc := rawConn(t, url)
	_ = nc.Publish("trakx.x.announce", batchOf("x", 1, record(hash(1), "1.2.3.4", 1), record(hash(2), "1.2.3.4", 1)))
	waitFor(t, "one applied, one refused", func() bool { st := b.Stats(); return st.Applied == 1 && st.Refused == 1 })
}

// TestDuplicateNodeName: two connections with one node name both see it,
// leave the cluster, and go on serving alone.
func TestDuplicateNodeName(t *testing.T) {
	_, url := runServer(t, -1)
	a1 := startNode(t, url, "a", nil, nil)
	a2 := startNode(t, url, "a", nil, nil)
	waitFor(t, "both leaving", func() bool { return a1.Stats().Left && a2.Stats().Left })
	waitFor(t, "both disconnected", func() bool { return !a1.Stats().Connected && !a2.Stats().Connected })
	announce(t, a1.front, hash(1), "1.2.3.4", 1, bittorrent.EventStarted)
	if peers(a1.store, hash(1)) != 1 {
		t.Error("a node out of the cluster stopped serving")
	}
}

// TestApplyLag: lag is each batch's (arrival - sent) above the sender's
// least, and a sender that restarts starts again.
func TestApplyLag(t *testing.T) {
	var s senders
	s.init()
	ms := time.Millisecond
	steps := []struct {
		seq          uint64
		sent, arrive time.Duration
		lag          time.Duration
	}{
		{1, 0, 1000 * ms, 0},
		{2, 100 * ms, 1150 * ms, 50 * ms},
		{3, 200 * ms, 1190 * ms, 0}, // a new least
		{4, 300 * ms, 1400 * ms, 110 * ms},
		{1, 5 * ms, 2000 * ms, 0}, // restarted
	}
	for i, st := range steps {
		h := wire.Header{Node: "x", Seq: st.seq, SentNanos: int64(st.sent)}
		lag, back := s.heard(&h, st.arrive)
		if lag != st.lag || back != (i == 0) {
			t.Errorf("step %d: lag %v, back %v; want %v, %v", i, lag, back, st.lag, i == 0)
		}
	}
	if s.others(2000*ms) != 1 || s.others(2000*ms+liveWindow+1) != 0 {
		t.Error("presence window wrong")
	}
}

// TestGarbageOnOwnSubjectIsNoClash: bytes on a node's own subject that
// are not a batch naming it are counted bad, and the node stays.
func TestGarbageOnOwnSubjectIsNoClash(t *testing.T) {
	_, url := runServer(t, -1)
	b := startNode(t, url, "b", nil, nil)
	nc := rawConn(t, url)
	for _, msg := range [][]byte{{0}, batchOf("x", 1)} {
		if err := nc.Publish("trakx.b.announce", msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both counted bad", func() bool { return b.Stats().BadBatches == 2 })
	if st := b.Stats(); st.Left || !st.Connected {
		t.Fatalf("B left the cluster over garbage: %+v", st)
	}
}
