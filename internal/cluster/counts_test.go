package cluster

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
)

// TestOutageCompletionsCountedOnce: a torrent completed once before a
// NATS outage is completed again on each of three nodes during it. Once
// NATS is back, the journals sent and the catch-ups done, every node
// counts every completion once: 1 + 3, not the largest of the nodes'
// counts, and none twice.
func TestOutageCompletionsCountedOnce(t *testing.T) {
	srv, url := runServer(t, -1)
	nodes := []*testNode{startNode(t, url, "a", nil, nil), startNode(t, url, "b", nil, nil), startNode(t, url, "c", nil, nil)}
	for _, n := range nodes {
		waitFor(t, n.opts.Node+" hearing the others", func() bool { return n.Stats().Nodes == 3 })
	}
	shared := hash(9)
	complete(t, nodes[0].front, shared, "1.2.9.1", 1)
	for _, n := range nodes {
		waitFor(t, "the first completion on "+n.opts.Node, func() bool { return downloaded(n, shared) == 1 })
	}
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	for i, n := range nodes {
		waitFor(t, "disconnected", func() bool { return !n.Stats().Connected })
		complete(t, n.front, shared, fmt.Sprintf("1.2.9.%d", i+2), 1)
	}
	runServer(t, port)
	for _, n := range nodes {
		waitFor(t, n.opts.Node+" caught up, its journal sent", func() bool {
			st := n.Stats()
			return st.Connected && !n.behind.Load() && !n.journal.holding.Load()
		})
	}
	for _, n := range nodes {
		waitFor(t, "4 completions on "+n.opts.Node, func() bool {
			return downloaded(n, shared) == 4 && peers(n.store, shared) == 4
		})
	}
	for _, n := range nodes { // nothing more arrives: the counts stay
		n.flushNow()
	}
	for _, n := range nodes {
		if got := downloaded(n, shared); got != 4 {
			t.Errorf("%s counts %d completions, want 4", n.opts.Node, got)
		}
		if st := n.Stats(); st.Dropped != 0 {
			t.Errorf("%s dropped %d records", n.opts.Node, st.Dropped)
		}
	}
}

// downloaded is a node's completion count of a torrent.
func downloaded(n *testNode, h bittorrent.InfoHash) uint32 {
	st, _ := n.store.Scrape(&h)
	return st.Downloaded
}

// TestCatchUpsUnderLoadEndInTheReference: while three nodes take
// announces and completions from four goroutines each, a fourth node is
// started empty again and again (each time catching up from a node under
// load), and the first node catches up again and again while it takes
// its own completions. Once quiet, all four hold exactly what the
// announces leave behind, each completion counted once: a snapshot's
// counts and the batches held meanwhile meet at one cut, on the serving
// node and on the requester.
func TestCatchUpsUnderLoadEndInTheReference(t *testing.T) {
	_, url := runServer(t, -1)
	var nodes []*testNode
	for k := range stressNodes {
		nodes = append(nodes, startNode(t, url, fmt.Sprintf("n%d", k), nil, nil))
	}
	for _, n := range nodes {
		waitFor(t, n.opts.Node+" caught up", func() bool { return !n.behind.Load() })
	}
	// Rounds of load go on until the catch-ups are done: the node byte
	// of a round's addresses bounds them.
	const maxRounds = 255 / stressNodes
	want, mu := swarmState{}, &sync.Mutex{}
	chaosDone := make(chan struct{})
	var load sync.WaitGroup
	for k, n := range nodes {
		for w := range stressWorkers {
			load.Go(func() {
				for round := 0; round < maxRounds && !closedYet(chaosDone); round++ {
					stressWorker(t, n.front, round*stressNodes+k, w, mu, want)
				}
			})
		}
	}
	late := startNode(t, url, "late", nil, nil)
	for i := range 6 {
		if i%2 == 0 {
			late.Close()
			late = startNode(t, url, "late", nil, nil)
			continue
		}
		before := nodes[0].Stats().CatchUps
		nodes[0].behind.Store(true)
		nodes[0].wantCatchUp()
		// A catch-up backs off (0.25 s, doubling) while the node it asks,
		// or this one, serves another: under -race, snapshots of this
		// size take seconds.
		waitLong(t, "n0 caught up again", time.Minute, func() bool { return nodes[0].Stats().CatchUps > before })
	}
	close(chaosDone)
	load.Wait()
	for _, n := range append(nodes, late) {
		awaitReference(t, n, want)
		if st := n.Stats(); st.Dropped+st.Refused+st.BadBatches != 0 {
			t.Errorf("%s: dropped %d, refused %d, bad batches %d", n.opts.Node, st.Dropped, st.Refused, st.BadBatches)
		}
	}
}

// closedYet reports whether ch is closed, without waiting.
func closedYet(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// awaitReference waits for n's store to hold want, failing the test
// after a minute with what differs.
func awaitReference(t *testing.T, n *testNode, want swarmState) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := stateOf(n.store)
		if got.equal(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold the reference (%+v):\n%s", n.opts.Node, n.Stats(), stateDiff(got, want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateDiff says, for at most five torrents, how got differs from want.
func stateDiff(got, want swarmState) string {
	var b strings.Builder
	differ := 0
	for h := range maps.Keys(merged(got, want)) {
		g, w := got[h], want[h]
		var extra, missing []netip.AddrPort
		for p, seeder := range g.peers {
			if s, ok := w.peers[p]; !ok || s != seeder {
				extra = append(extra, p)
			}
		}
		for p, seeder := range w.peers {
			if s, ok := g.peers[p]; !ok || s != seeder {
				missing = append(missing, p)
			}
		}
		if g.downloaded == w.downloaded && len(extra)+len(missing) == 0 {
			continue
		}
		if differ++; differ <= 5 {
			fmt.Fprintf(&b, "%q: downloaded %d, want %d; peers not wanted (or not as wanted) %v; wanted and missing %v\n",
				h[:], g.downloaded, w.downloaded, extra[:min(3, len(extra))], missing[:min(3, len(missing))])
		}
	}
	fmt.Fprintf(&b, "%d torrents differ", differ)
	return b.String()
}

// merged is a swarmState with the torrents of both.
func merged(a, b swarmState) swarmState {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

// TestCompletionDuringTheWalkCounted: the serving node takes a completion
// after its cut, before its walk reaches the torrent, so that the walk
// sends the peer as a seeder. The requester counts it although the
// snapshot made the peer a seeder already, whether its batch arrives
// while the requester holds batches or after: it is between the cut and
// the walk's end (window.go).
func TestCompletionDuringTheWalkCounted(t *testing.T) {
	_, url := runServer(t, -1)
	h := hash(5)
	var a *testNode
	var once sync.Once
	a = startNode(t, url, "a", nil, func(o *Options) {
		walk := o.Snapshot
		o.Snapshot = func(yield func(r wire.Record) bool) {
			once.Do(func() { complete(t, a.front, h, "1.2.5.9", 1) })
			walk(yield)
		}
	})
	complete(t, a.front, h, "1.2.5.1", 1)
	announce(t, a.front, h, "1.2.5.9", 1, bittorrent.EventStarted) // completes during the walk
	b := newNode(t, url, "b", nil, nil)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b caught up", func() bool { return b.Stats().CatchUps == 1 })
	waitFor(t, "2 completions on b", func() bool { return downloaded(b, h) == 2 })
	if got := downloaded(a, h); got != 2 {
		t.Errorf("a counts %d completions, want 2", got)
	}
}
