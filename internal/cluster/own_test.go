package cluster

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
)

// TestOwnAnnouncesSurviveAStaleSnapshot: a peer this node saw stop while
// it caught up does not come back from a snapshot the serving node walked
// before that stop reached it: the node applies its own announces of the
// catch-up again after the snapshot.
func TestOwnAnnouncesSurviveAStaleSnapshot(t *testing.T) {
	_, url := runServer(t, -1)
	var armed atomic.Bool
	walking, release := make(chan struct{}), make(chan struct{})
	stale := record(hash(1), "1.2.3.4", 1)
	s := startNode(t, url, "s", nil, func(o *Options) {
		real := o.Snapshot
		o.Snapshot = func(yield func(wire.Record) bool) {
			if !armed.Load() {
				real(yield)
				return
			}
			close(walking) // the walk as it was before the stop arrived
			<-release
			yield(stale)
		}
	})
	r := startNode(t, url, "r", nil, nil)
	announce(t, r.front, hash(1), "1.2.3.4", 1, bittorrent.EventStarted)
	waitFor(t, "the peer on S", func() bool { return peers(s.store, hash(1)) == 1 })
	armed.Store(true)
	before := r.Stats().CatchUps
	r.behind.Store(true)
	r.wantCatchUp()
	<-walking
	announce(t, r.front, hash(1), "1.2.3.4", 1, bittorrent.EventStopped)
	close(release)
	waitFor(t, "R caught up", func() bool { return r.Stats().CatchUps > before })
	if peers(r.store, hash(1)) != 0 {
		t.Fatal("a peer R saw stop came back from a stale snapshot")
	}
}

// TestHeldBatchesTheSnapshotHoldsAreSkipped: of the batches held during
// a catch-up, those up to each node's Seq at the snapshot's end are not
// applied again: a started then completed peer the snapshot brought as a
// seeder, counted once, is not set back and counted twice.
func TestHeldBatchesTheSnapshotHoldsAreSkipped(t *testing.T) {
	_, url := runServer(t, -1)
	r := startNode(t, url, "r", nil, nil)
	nc := rawConn(t, url)
	seed := record(hash(1), "1.2.3.4", 1)
	seed.Seeder, seed.Event = true, bittorrent.EventCompleted
	r.rx.startBuffering()
	for seq, rec := range []wire.Record{record(hash(1), "1.2.3.4", 1), seed, record(hash(2), "1.2.3.5", 2)} {
		if err := nc.Publish("trakx.x.announce", batchOf("x", uint64(seq+1), rec)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three batches held", func() bool {
		r.rx.mu.Lock()
		defer r.rx.mu.Unlock()
		return len(r.rx.buffer) == 3
	})
	complete(t, r.store, hash(1), "1.2.3.4", 1) // as the snapshot brings it, counted
	r.rx.skipUpTo(map[string]uint64{"x": 2}, nil)
	r.rx.stopBuffering()
	h := hash(1)
	if st, _ := r.store.Scrape(&h); st.Complete != 1 || st.Downloaded != 1 {
		t.Errorf("the snapshot's seeder: %+v, want one seeder counted once", st)
	}
	if peers(r.store, hash(2)) != 1 {
		t.Error("the batch after the snapshot's Seq was not applied")
	}
}

// TestWindowCountsWhatTheWalkSaw: of the batches after a snapshot's cut,
// those up to its walk's end are counted even for a peer the walk brought
// as a seeder already (the snapshot's counts lack them), held or applied
// as they come; later ones by the store's rule.
func TestWindowCountsWhatTheWalkSaw(t *testing.T) {
	_, url := runServer(t, -1)
	r := startNode(t, url, "r", nil, nil)
	nc := rawConn(t, url)
	done := func(addr string) wire.Record {
		rec := record(hash(1), addr, 1)
		rec.Seeder, rec.Event = true, bittorrent.EventCompleted
		return rec
	}
	for _, addr := range []string{"1.2.3.4", "1.2.3.5", "1.2.3.6"} { // as the walk brings them: seeders, uncounted
		req := bittorrent.AnnounceRequest{InfoHash: hash(1), Addr: netip.MustParseAddr(addr), Port: 1}
		var resp bittorrent.AnnounceResponse
		if err := r.store.Announce(&req, &resp); err != nil {
			t.Fatal(err)
		}
	}
	r.rx.startBuffering()
	publish := func(seq uint64, rec wire.Record) {
		if err := nc.Publish("trakx.x.announce", batchOf("x", seq, rec)); err != nil {
			t.Fatal(err)
		}
	}
	publish(5, done("1.2.3.4")) // after the cut (4), held
	waitFor(t, "one batch held", func() bool { r.rx.mu.Lock(); defer r.rx.mu.Unlock(); return len(r.rx.buffer) == 1 })
	r.rx.skipUpTo(map[string]uint64{"x": 4}, map[string]uint64{"x": 7})
	r.rx.stopBuffering()
	publish(6, done("1.2.3.5")) // in the window, applied as it comes
	publish(8, done("1.2.3.6")) // after the walk: the store's rule, a seeder already
	waitFor(t, "the three batches applied", func() bool { return r.Stats().Applied == 3 })
	h := hash(1)
	if st, _ := r.store.Scrape(&h); st.Downloaded != 2 {
		t.Errorf("downloaded %d, want 2: the two completions in the window, not the one after it", st.Downloaded)
	}
}
