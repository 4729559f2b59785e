package cluster

import (
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
	r.rx.skipUpTo(map[string]uint64{"x": 2})
	r.rx.stopBuffering()
	h := hash(1)
	if st, _ := r.store.Scrape(&h); st.Complete != 1 || st.Downloaded != 1 {
		t.Errorf("the snapshot's seeder: %+v, want one seeder counted once", st)
	}
	if peers(r.store, hash(2)) != 1 {
		t.Error("the batch after the snapshot's Seq was not applied")
	}
}
