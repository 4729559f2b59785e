package cluster

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// TestPropagation: an announce accepted by A is in B's store soon after,
// and A, which publishes with no-echo, applies nothing of its own.
func TestPropagation(t *testing.T) {
	_, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, nil)
	b := startNode(t, url, "b", nil, nil)
	began := time.Now()
	announce(t, a.front, hash(1), "1.2.3.4", 6881, bittorrent.EventStarted)
	waitFor(t, "the peer on B", func() bool { return peers(b.store, hash(1)) == 1 })
	if d := time.Since(began); d > time.Second {
		t.Errorf("propagation took %v, want under 1 s (flushed every 100 ms)", d)
	}
	announce(t, a.front, hash(1), "1.2.3.4", 6881, bittorrent.EventStopped)
	waitFor(t, "the peer gone from B", func() bool { return peers(b.store, hash(1)) == 0 })
	// A hears B's heartbeats: it would have had its own batches by now.
	waitFor(t, "A hearing B", func() bool { return a.Stats().Nodes == 2 && b.Stats().Nodes == 2 })
	sa, sb := a.Stats(), b.Stats()
	if sa.Applied != 0 || sa.Published != 2 || sb.Applied != 2 {
		t.Errorf("A applied %d (want 0: no echo) and published %d (want 2), B applied %d (want 2)", sa.Applied, sa.Published, sb.Applied)
	}
	if !sa.Connected || sa.BytesOut == 0 || sb.BytesIn == 0 {
		t.Errorf("A connected %v, bytes out %d; B bytes in %d", sa.Connected, sa.BytesOut, sb.BytesIn)
	}
}

// TestPrivateNotPublished: a peer at a private address is published only
// when ReplicatePrivate says so.
func TestPrivateNotPublished(t *testing.T) {
	_, url := runServer(t, -1)
	var allow atomic.Bool
	a := startNode(t, url, "a", nil, func(o *Options) { o.ReplicatePrivate = allow.Load })
	b := startNode(t, url, "b", nil, nil)
	announce(t, a.front, hash(1), "10.0.0.1", 6881, bittorrent.EventStarted)
	announce(t, a.front, hash(2), "1.2.3.4", 6881, bittorrent.EventStarted)
	waitFor(t, "the public peer on B", func() bool { return peers(b.store, hash(2)) == 1 })
	if peers(b.store, hash(1)) != 0 || a.Stats().Published != 1 {
		t.Fatalf("private peer published: B holds %d, A published %d", peers(b.store, hash(1)), a.Stats().Published)
	}
	allow.Store(true)
	announce(t, a.front, hash(1), "10.0.0.1", 6881, bittorrent.EventNone)
	waitFor(t, "the private peer on B once allowed", func() bool { return peers(b.store, hash(1)) == 1 })
}

// TestAnnounceAllocatesNothing: publishing an announce allocates nothing.
func TestAnnounceAllocatesNothing(t *testing.T) {
	n := newNode(t, "nats://127.0.0.1:1", "a", nil, nil)
	req := bittorrent.AnnounceRequest{InfoHash: hash(1), Addr: netip.MustParseAddr("1.2.3.4"), Port: 6881, Left: 1}
	var resp bittorrent.AnnounceResponse
	_ = n.front.Announce(&req, &resp)
	allocs := testing.AllocsPerRun(1000, func() {
		resp.Reset()
		if err := n.front.Announce(&req, &resp); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations an announce, want 0", allocs)
	}
}

// TestFullOutboxDrops: with nobody flushing, announces past the outbox's
// capacity are served, dropped from publishing and counted, not waited on.
func TestFullOutboxDrops(t *testing.T) {
	n := newNode(t, "nats://127.0.0.1:1", "a", nil, nil)
	req := bittorrent.AnnounceRequest{InfoHash: hash(1), Addr: netip.MustParseAddr("1.2.3.4"), Port: 6881, Left: 1}
	var resp bittorrent.AnnounceResponse
	for range outboxRecords + 10 {
		if err := n.front.Announce(&req, &resp); err != nil {
			t.Fatal(err)
		}
	}
	if d := n.Stats().Dropped; d != 10 {
		t.Errorf("dropped %d, want 10", d)
	}
}

// TestBatchesBounded: a burst goes out in batches of at most batchBytes,
// all of it applied by B, at under 32 bytes an IPv4 announce.
func TestBatchesBounded(t *testing.T) {
	_, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, nil)
	b := startNode(t, url, "b", nil, nil)
	sub, err := rawConn(t, url).SubscribeSync("trakx.a.announce")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for i := range n {
		announce(t, a.front, hash(i%500), "1.2.3.4", uint16(1+i), bittorrent.EventStarted)
	}
	waitFor(t, "B applying the burst", func() bool { return b.Stats().Applied == n })
	batches, records := 0, 0
	for records < n {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d records: %v", records, err)
		}
		if len(m.Data) > batchBytes {
			t.Fatalf("a batch of %d bytes", len(m.Data))
		}
		h, _, err := wire.ParseBatch(m.Data, func(wire.Record) {})
		if err != nil {
			t.Fatal(err)
		}
		batches, records = batches+1, records+h.Count
	}
	st := a.Stats()
	perRecord := float64(st.BytesOut) / float64(st.Published)
	t.Logf("%d records in %d batches, %.1f bytes a record", records, batches, perRecord)
	if batches < 2 || perRecord > 32 {
		t.Errorf("%d batches, %.1f bytes a record", batches, perRecord)
	}
}

// TestPublishDeniedCounted: a node whose credentials may not publish on
// its subject logs so once, and its batches from then on are counted
// dropped, not published; the other node gets none of them, nor a
// snapshot of its store.
func TestPublishDeniedCounted(t *testing.T) {
	perms := func(pub ...string) *server.Permissions {
		return &server.Permissions{Publish: &server.SubjectPermission{Allow: pub}}
	}
	s := tt.RunNATS(t, &server.Options{Users: []*server.User{
		// a may answer snapshot requests, not announce
		{Username: "a", Password: "pa", Permissions: perms("trakx.elsewhere.>", "trakx.a.snapshot.>")},
		{Username: "b", Password: "pb", Permissions: perms("trakx.b.>")},
	}})
	addr := s.Addr().String()
	log, hook := test.NewNullLogger()
	a := startNode(t, "nats://a:pa@"+addr, "a", nil, func(o *Options) { o.Log = log })
	b := startNode(t, "nats://b:pb@"+addr, "b", nil, nil)
	denied := func() int {
		n := 0
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.ErrorLevel && strings.Contains(e.Message, "does not let this node publish on trakx.a.announce") {
				n++
			}
		}
		return n
	}
	announce(t, a.front, hash(1), "1.2.3.4", 1, bittorrent.EventStarted)
	waitFor(t, "the refusal logged", func() bool { return denied() == 1 })
	waitFor(t, "the first batch sent", func() bool { st := a.Stats(); return st.Published+st.Dropped == 1 })
	published, dropped := a.Stats().Published, a.Stats().Dropped
	announce(t, a.front, hash(2), "1.2.3.5", 2, bittorrent.EventStarted)
	waitFor(t, "the next batch counted dropped", func() bool { return a.Stats().Dropped == dropped+1 })
	if st := a.Stats(); st.Published != published {
		t.Errorf("published went from %d to %d after the refusal", published, st.Published)
	}
	if peers(b.store, hash(1))+peers(b.store, hash(2)) != 0 {
		t.Error("B applied a refused batch")
	}
	announce(t, a.front, hash(3), "1.2.3.6", 3, bittorrent.EventStarted)
	waitFor(t, "the third batch counted dropped", func() bool { return a.Stats().Dropped == dropped+2 })
	if n := denied(); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}
	b.Close() // A alone answers snapshot requests now: it must not serve one
	reply, err := askSnapshot(t, rawConn(t, "nats://b:pb@"+addr), "b", 1)
	if err != nil || string(reply) != string([]byte{msgBusy}) {
		t.Fatalf("a snapshot request to the refused node: %v, %q; want busy", err, reply)
	}
}
