package cluster

import (
	"errors"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
	"github.com/trakx/trakx/internal/swarm"
)

// The snapshot protocol's message kinds, a message's first byte. A
// requester publishes its node name on <name>.snapshot with a reply inbox;
// the node that takes it answers on the inbox with busy, or with chunks
// and then the end, each a request the requester acknowledges (an empty
// reply) once it has applied it, so that the server never outruns it.
const (
	msgBusy   = 'B'
	msgChunk  = 'C' // followed by a wire batch
	msgCounts = 'D' // followed by completion counts (wire.AppendCounts)
	msgEnd    = 'E'
)

// The catch-up's bounds.
const (
	answerWait = 2 * time.Second // for the first answer, and between chunks
	retryFirst = 250 * time.Millisecond
	retryMost  = 30 * time.Second
	maxTries   = 20      // attempts of one catch-up
	maxChunks  = 1 << 20 // chunks of one snapshot: 1 TiB
)

// outcome is how one attempt at a snapshot ended.
type outcome int

const (
	caughtUp outcome = iota
	busy             // the node asked was serving another
	noAnswer         // nobody answered in time, or the transfer broke off
)

// runCatchUps catches up each time one is wanted (connection,
// reconnection, a node heard anew) and the node is behind.
func (n *Node) runCatchUps() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case <-n.kick:
		}
		if !n.left.Load() && n.behind.Load() {
			n.catchUp()
		}
	}
}

// catchUp asks for a snapshot until one is applied, retrying with
// back-off while other nodes are heard. Ready closes when it succeeds or
// after answerWait of trying.
func (n *Node) catchUp() {
	began := time.Now()
	delay := retryFirst
	for range maxTries {
		switch n.attempt() {
		case caughtUp:
			n.behind.Store(false)
			n.counters.catchUps.Add(1)
			n.markReady()
			return
		case noAnswer:
			if n.senders.others(n.clock()) == 0 {
				n.log.Infof("cluster: no other node answers; serving with what this node holds, catching up when one is heard")
				n.markReady()
				return
			}
		}
		if time.Since(began) >= answerWait {
			n.markReady()
		}
		select {
		case <-n.done:
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, retryMost)
	}
	n.log.Warnf("cluster: no snapshot after %d attempts; serving with what this node holds", maxTries)
	n.markReady()
}

// attempt asks one node for a snapshot and applies it, holding the
// batches that arrive meanwhile and applying them after it. With NATS
// away it asks nothing: a request would wait in the outage's buffer and
// reach a node long after anyone listened for its answer.
func (n *Node) attempt() outcome {
	nc := n.conn.Load()
	if nc == nil || !nc.IsConnected() {
		return noAnswer
	}
	n.catching.Store(true)
	defer n.catching.Store(false)
	n.own.start()
	defer n.own.stop(n.reapplyOwn) // last: after the snapshot and the buffer
	n.rx.startBuffering()
	defer n.rx.stopBuffering()
	id := n.attempts.Add(1)
	attempt := strconv.FormatUint(id, 10)
	sub, err := nc.SubscribeSync(n.snapshotStream("*", n.opts.Node, attempt))
	if err != nil {
		return noAnswer
	}
	defer sub.Unsubscribe()
	seqs := append(n.senders.applied(), wire.Seq{Node: n.opts.Node, Seq: n.flushNow()})
	// The reply subject is only for the server's "no responders", which
	// ends the wait at once when no other node is there.
	noResponders := n.snapshotStream(n.opts.Node, n.opts.Node, attempt)
	if err := nc.PublishRequest(n.snapshotAsk(n.opts.Node), noResponders, snapshotRequest(id, seqs)); err != nil {
		return noAnswer
	}
	return n.receiveSnapshot(sub, attempt)
}

// receiveSnapshot applies the chunks that come on sub until the end,
// from the first node that answers alone.
func (n *Node) receiveSnapshot(sub *nats.Subscription, attempt string) outcome {
	w := n.startAppliers()
	defer w.stop()
	from := ""
	for range maxChunks {
		m, err := sub.NextMsg(answerWait)
		if err != nil {
			return noAnswer
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			return noAnswer // no node listens for requests
		}
		n.counters.bytesIn.Add(uint64(len(m.Data)))
		node, ok := n.responderOf(m.Subject)
		if from == "" && ok {
			from, w.ackTo = node, n.snapshotAcks(n.opts.Node, node, attempt)
		}
		if !ok || node != from || len(m.Data) == 0 {
			n.counters.badBatches.Add(1)
			continue
		}
		switch m.Data[0] {
		case msgBusy:
			return busy
		case msgChunk:
			w.inflight.Add(1)
			w.chunks <- m // a free applier takes it and acknowledges it
		case msgCounts:
			w.inflight.Wait() // the chunks before it made their torrents
			n.applyCounts(m.Data[1:])
			w.ack()
		case msgEnd:
			n.skipHeld(m.Data[1:])
			applied, refused, malformed := w.stop()
			w.ack()
			n.log.Infof("cluster: caught up from %s: %d peers from a snapshot (%d refused, %d malformed)", from, applied, refused, malformed)
			return caughtUp
		}
	}
	return noAnswer
}

// skipHeld reads a snapshot's end, each node's last batch the snapshot
// holds, so that the batches held meanwhile up to those are not applied
// again (a completion counted twice, a peer set back); an end that does
// not parse skips none.
func (n *Node) skipHeld(end []byte) {
	seqs := map[string]uint64{}
	if err := wire.ParseSeqs(end, func(node []byte, seq uint64) { seqs[string(node)] = seq }); err != nil {
		n.counters.badBatches.Add(1)
		return
	}
	n.rx.skipUpTo(seqs)
}

// applyCounts raises the completion counts of the torrents a snapshot's
// list names (Options.Downloaded); a list that does not parse is counted
// a bad batch and applied not at all.
func (n *Node) applyCounts(list []byte) {
	if n.opts.Downloaded == nil {
		return
	}
	if err := wire.ParseCounts(list, n.applyCount); err != nil {
		n.counters.badBatches.Add(1)
	}
}

// applyCount applies one torrent's count.
func (n *Node) applyCount(c wire.Count) { n.opts.Downloaded(&c.InfoHash, c.Downloaded) }

// maxAppliers is the most goroutines applying one snapshot's chunks:
// the store is sharded, so chunks apply side by side.
const maxAppliers = 4

// appliers apply a snapshot's chunks side by side; each acknowledges a
// chunk once it has applied it. A snapshot holds each peer once, so their
// order does not matter; the buffer is replayed after all are applied.
type appliers struct {
	node     *Node
	ackTo    string // set before the first chunk is handed out
	chunks   chan *nats.Msg
	inflight sync.WaitGroup // chunks handed out and not yet applied
	wg       sync.WaitGroup
	each     []*snapshotApplier
	stopped  bool
}

// startAppliers starts one applier a CPU, maxAppliers at most.
func (n *Node) startAppliers() *appliers {
	w := &appliers{node: n, chunks: make(chan *nats.Msg, ackWindow)}
	for range min(runtime.GOMAXPROCS(0), maxAppliers) {
		a := &snapshotApplier{node: n}
		w.each = append(w.each, a)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for m := range w.chunks {
				a.apply(m.Data[1:])
				w.ack()
				w.inflight.Done()
			}
		}()
	}
	return w
}

// ack acknowledges one message of the snapshot to the node serving it.
func (w *appliers) ack() {
	if nc := w.node.conn.Load(); nc != nil {
		_ = nc.Publish(w.ackTo, nil)
	}
}

// stop waits for the chunks handed out to be applied, and returns the
// records applied, refused and malformed.
func (w *appliers) stop() (applied, refused, malformed int) {
	if !w.stopped {
		w.stopped = true
		close(w.chunks)
		w.wg.Wait()
	}
	for _, a := range w.each {
		applied, refused, malformed = applied+a.applied, refused+a.refused, malformed+a.malformed
	}
	return applied, refused, malformed
}

// snapshotApplier applies a snapshot's chunks: each run of one torrent's
// records at once through Options.ApplyTorrent when it takes it, else
// one by one through Options.Apply.
type snapshotApplier struct {
	node                        *Node
	parser                      wire.Parser
	req                         bittorrent.AnnounceRequest
	resp                        bittorrent.AnnounceResponse
	run                         swarm.Torrent // the run being gathered
	applied, refused, malformed int
}

// apply applies one chunk's records.
func (a *snapshotApplier) apply(chunk []byte) {
	_, st, err := a.parser.Parse(chunk, a.gather)
	a.flush()
	var format wire.FormatError
	if errors.Is(err, wire.ErrHeader) || errors.As(err, &format) {
		a.node.counters.badBatches.Add(1)
		return
	}
	a.malformed += st.Malformed
	a.node.counters.dropped.Add(uint64(st.Malformed))
}

// gather adds a record to the run, applying the run first when the
// record is another torrent's.
func (a *snapshotApplier) gather(r wire.Record) {
	if r.InfoHash != a.run.Hash {
		a.flush()
		a.run.Hash = r.InfoHash
	}
	partial := r.Event == bittorrent.EventPaused
	if r.Addr.Is4() {
		a.run.Peers4 = append(a.run.Peers4, swarm.SnapshotPeer4{IP: r.Addr.As4(), Port: r.Port, Seeder: r.Seeder, Partial: partial})
	} else {
		a.run.Peers6 = append(a.run.Peers6, swarm.SnapshotPeer6{IP: r.Addr.As16(), Port: r.Port, Seeder: r.Seeder, Partial: partial})
	}
}

// flush applies the run gathered and empties it.
func (a *snapshotApplier) flush() {
	n := len(a.run.Peers4) + len(a.run.Peers6)
	if n == 0 {
		return
	}
	defer func() { a.run.Peers4, a.run.Peers6 = a.run.Peers4[:0], a.run.Peers6[:0] }()
	if bulk := a.node.opts.ApplyTorrent; bulk != nil {
		if kept, ok := bulk(&a.run); ok {
			a.applied, a.refused = a.applied+kept, a.refused+n-kept
			a.node.counters.snapshotPeers.Add(uint64(kept))
			a.node.counters.refused.Add(uint64(n - kept))
			return
		}
	}
	for _, p := range a.run.Peers4 {
		a.record(snapshotRecord(a.run.Hash, netip.AddrFrom4(p.IP), p.Port, p.Seeder, p.Partial))
	}
	for _, p := range a.run.Peers6 {
		a.record(snapshotRecord(a.run.Hash, netip.AddrFrom16(p.IP), p.Port, p.Seeder, p.Partial))
	}
}

// record applies one record of a snapshot.
func (a *snapshotApplier) record(r wire.Record) {
	r.Request(&a.req)
	a.resp.Reset()
	if err := a.node.opts.Apply.Announce(&a.req, &a.resp); err != nil {
		a.refused++
		a.node.counters.refused.Add(1)
		return
	}
	a.applied++
	a.node.counters.snapshotPeers.Add(1)
}
