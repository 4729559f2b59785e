package cluster

import (
	"fmt"
	"maps"
	"net/netip"
	"sync"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/swarm"
)

// The stress test's size: nodes, announcing goroutines on each, peers
// each goroutine owns, and the torrents they share.
const (
	stressNodes    = 3
	stressWorkers  = 4
	stressPeers    = 600
	stressTorrents = 40
)

// swarmState is what a store holds, in a form to compare: each torrent's
// peers (whether each seeds) and its completion count.
type swarmState map[bittorrent.InfoHash]torrentState

// torrentState is one torrent's part of a swarmState.
type torrentState struct {
	peers      map[netip.AddrPort]bool
	downloaded uint32
}

// stateOf walks a store into a swarmState.
func stateOf(s *swarm.Store) swarmState {
	st := swarmState{}
	s.Walk(func(t *swarm.Torrent) error {
		ts := torrentState{peers: map[netip.AddrPort]bool{}, downloaded: t.Downloaded}
		for _, p := range t.Peers4 {
			ts.peers[netip.AddrPortFrom(netip.AddrFrom4(p.IP), p.Port)] = p.Seeder
		}
		st[t.Hash] = ts
		return nil
	})
	return st
}

// equal reports whether two states hold the same torrents, peers and
// completion counts.
func (a swarmState) equal(b swarmState) bool {
	return maps.EqualFunc(a, b, func(x, y torrentState) bool {
		return x.downloaded == y.downloaded && maps.Equal(x.peers, y.peers)
	})
}

// stressWorker announces its own peers on tr and writes what they should
// leave behind into want: every peer starts; every third stops; every
// fifth of the others completes (a seeder, counted once).
func stressWorker(t *testing.T, tr bittorrent.Tracker, node, worker int, mu *sync.Mutex, want swarmState) {
	for i := range stressPeers {
		h := hash(i % stressTorrents)
		addr := netip.AddrFrom4([4]byte{20, byte(node), byte(worker), byte(i)})
		port := uint16(1000 + i/256)
		announce(t, tr, h, addr.String(), port, bittorrent.EventStarted)
		stops, completes := i%3 == 0, i%5 == 0
		switch {
		case stops:
			announce(t, tr, h, addr.String(), port, bittorrent.EventStopped)
		case completes:
			complete(t, tr, h, addr.String(), port)
		}
		mu.Lock()
		ts, ok := want[h]
		if !ok {
			ts = torrentState{peers: map[netip.AddrPort]bool{}}
		}
		if !stops {
			ts.peers[netip.AddrPortFrom(addr, port)] = completes
		}
		if !stops && completes {
			ts.downloaded++
		}
		want[h] = ts
		mu.Unlock()
	}
}

// TestStressEndsInTheReference: three nodes take announces from four
// goroutines each at once, over shared torrents; once quiet, every
// node's store holds exactly what the announces leave behind, nothing
// dropped or refused: each peer's announces come from one publisher, in
// order, and each completion is counted once on every node.
func TestStressEndsInTheReference(t *testing.T) {
	_, url := runServer(t, -1)
	var nodes []*testNode
	for k := range stressNodes {
		nodes = append(nodes, startNode(t, url, fmt.Sprintf("n%d", k), nil, nil))
	}
	for _, n := range nodes { // the first node catches up when it hears the second
		waitFor(t, n.opts.Node+" caught up", func() bool { return !n.behind.Load() })
	}
	want, mu := swarmState{}, &sync.Mutex{}
	var wg sync.WaitGroup
	for k, n := range nodes {
		for w := range stressWorkers {
			wg.Go(func() { stressWorker(t, n.front, k, w, mu, want) })
		}
	}
	wg.Wait()
	for _, n := range nodes {
		waitFor(t, n.opts.Node+" holding the reference", func() bool { return stateOf(n.store).equal(want) })
		if st := n.Stats(); st.Dropped+st.Refused+st.BadBatches != 0 {
			t.Errorf("%s: dropped %d, refused %d, bad batches %d", n.opts.Node, st.Dropped, st.Refused, st.BadBatches)
		}
	}
}
