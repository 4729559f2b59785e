package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
	"github.com/trakx/trakx/internal/swarm"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// runServer starts an embedded NATS server on port (-1: any) and returns
// it and its URL.
func runServer(t *testing.T, port int) (*server.Server, string) {
	t.Helper()
	s := tt.RunNATS(t, &server.Options{Port: port})
	return s, "nats://" + s.Addr().(*net.TCPAddr).String()
}

// testNode is a node with a store of its own: front is what frontends
// would be handed.
type testNode struct {
	*Node
	store *swarm.Store
	front bittorrent.Tracker
}

// storeConfig is a store's configuration for the tests.
var storeConfig = swarm.Config{AnnounceInterval: time.Minute, PeerTTL: time.Hour, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 30, MaxTorrents: 1 << 30}

// newNode makes (not starts) a node named node on url, applying to a
// store of its own through apply (nil: the store itself), with edit, if
// any, changing its options.
func newNode(t *testing.T, url, node string, apply func(bittorrent.Tracker) bittorrent.Tracker, edit func(*Options)) *testNode {
	t.Helper()
	store := swarm.New(storeConfig)
	t.Cleanup(store.Close)
	var to bittorrent.Tracker = store
	var bulk func(*swarm.Torrent) (int, bool)
	if apply != nil {
		to = apply(store) // a snapshot's records go through it one by one
	} else {
		bulk = StoreApplyTorrent(store, func(*bittorrent.InfoHash) error { return nil })
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	o := Options{URL: url, Name: "trakx", Node: node, Apply: to, Snapshot: StoreSnapshot(store), Counts: StoreCounts(store), ApplyTorrent: bulk, Downloaded: StoreDownloaded(store), Log: log}
	if edit != nil {
		edit(&o)
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return &testNode{Node: n, store: store, front: n.Wrap(store)}
}

// startNode makes a node, starts it and waits for it to be ready.
func startNode(t *testing.T, url, node string, apply func(bittorrent.Tracker) bittorrent.Tracker, edit func(*Options)) *testNode {
	t.Helper()
	n := newNode(t, url, node, apply, edit)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node "+node+" ready", func() bool {
		select {
		case <-n.Ready():
			return true
		default:
			return false
		}
	})
	return n
}

// waitFor polls cond until it holds, failing the test after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitLong(t, what, 15*time.Second, cond)
}

// waitLong polls cond until it holds, failing the test after limit.
func waitLong(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hash is a test info hash.
func hash(i int) bittorrent.InfoHash {
	var h bittorrent.InfoHash
	copy(h[:], "torrent-"+strconv.Itoa(i))
	return h
}

// announce announces a peer on tr and fails the test on a refusal.
func announce(t *testing.T, tr bittorrent.Tracker, h bittorrent.InfoHash, addr string, port uint16, ev bittorrent.Event) {
	t.Helper()
	req := bittorrent.AnnounceRequest{InfoHash: h, Addr: netip.MustParseAddr(addr), Port: port, Event: ev, Left: 1, NumWant: 0}
	var resp bittorrent.AnnounceResponse
	if err := tr.Announce(&req, &resp); err != nil {
		t.Fatal(err)
	}
}

// peers is the number of peers a store holds in a torrent.
func peers(s *swarm.Store, h bittorrent.InfoHash) int {
	st, _ := s.Scrape(&h)
	return int(st.Complete + st.Incomplete)
}

// rawConn is a plain NATS connection for publishing by hand.
func rawConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// askSnapshot asks for a snapshot by hand on nc as node asker, and
// returns the first answer's bytes.
func askSnapshot(t *testing.T, nc *nats.Conn, asker string, attempt int) ([]byte, error) {
	t.Helper()
	sub, err := nc.SubscribeSync(fmt.Sprintf("trakx.*.snapshot.%s.%d", asker, attempt))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Publish("trakx."+asker+".snapshot", snapshotRequest(uint64(attempt), nil)); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// batchOf is a batch of records from node.
func batchOf(node string, seq uint64, recs ...wire.Record) []byte {
	return wire.AppendBatch(nil, wire.Header{Node: node, Seq: seq, SentNanos: int64(seq) * 1e6}, recs)
}

// record is a valid record of an IPv4 peer.
func record(h bittorrent.InfoHash, addr string, port uint16) wire.Record {
	return wire.Record{InfoHash: h, Addr: netip.MustParseAddr(addr), Port: port}
}

// holdFirst is a tracker that holds its first announce until released,
// to catch a node in the middle of a catch-up.
type holdFirst struct {
	next    bittorrent.Tracker
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

// holding wraps next in a holdFirst.
func holding(next bittorrent.Tracker) *holdFirst {
	return &holdFirst{next: next, entered: make(chan struct{}), release: make(chan struct{})}
}

// Announce holds the first announce until release is closed.
func (h *holdFirst) Announce(req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	h.once.Do(func() {
		close(h.entered)
		<-h.release
	})
	return h.next.Announce(req, resp)
}

// Scrape passes on.
func (h *holdFirst) Scrape(ih *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	return h.next.Scrape(ih)
}
