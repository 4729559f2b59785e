package cluster

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trakx/trakx/internal/cluster/wire"
)

// The snapshot protocol's message kinds, a message's first byte. A
// requester publishes a request on <name>.<node>.snapshot (subjects.go);
// the node that takes it answers with busy, or with chunks, count lists,
// the walk's end and then the end, each acknowledged by the requester
// once it has applied it, so that the server never outruns it.
const (
	msgBusy   = 'B'
	msgChunk  = 'C' // followed by a wire batch
	msgCounts = 'D' // followed by completion counts (wire.AppendCounts)
	msgWalked = 'W' // followed by each node's last batch applied when the walk ended (wire.AppendSeqs)
	msgEnd    = 'E'
)

// The catch-up's bounds.
const (
	answerWait = 2 * time.Second // for the first answer, and between chunks
	retryFirst = 250 * time.Millisecond
	retryMost  = 30 * time.Second
	maxTries   = 20      // attempts of one catch-up
	maxChunks  = 1 << 20 // chunks of one snapshot: 1 TiB
	// hearingMargin is what a heartbeat may be late by: the flusher
	// ticks every flushEvery.
	hearingMargin = 2 * flushEvery
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
	if !n.awaitJournal() {
		return noAnswer
	}
	n.awaitHearing()
	if !n.role.CompareAndSwap(idle, catchingUp) {
		return busy // serving a snapshot: after it
	}
	defer n.role.Store(idle)
	n.own.start()
	defer n.own.stop(&n.announcing, n.reapplyOwn) // last: after the snapshot and the buffer
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

// awaitJournal waits until the outage's journal, if any, has gone, at
// most journalWait and a heartbeat: the request then names its last
// batch, so that the serving node's counts hold the completions this node
// took during the outage before it is asked for them. It reports whether
// the journal went.
func (n *Node) awaitJournal() bool {
	deadline := time.Now().Add(journalWait + heartbeat)
	for n.journal.holding.Load() {
		if time.Now().After(deadline) || n.closed() {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// awaitHearing waits until a heartbeat and hearingMargin have passed
// since the node last began to listen, so that it has heard every live
// node: the request then names a batch of each, and the serving node
// awaits it. A batch a node published before this one listened reaches
// this one only through the snapshot, and the serving node may not have
// applied it yet; having applied a later one, it has.
func (n *Node) awaitHearing() {
	until := time.Duration(n.listening.Load()) + heartbeat + hearingMargin
	for wait := until - n.clock(); wait > 0; wait = until - n.clock() {
		select {
		case <-n.done:
			return
		case <-time.After(wait):
		}
	}
}

// receiveSnapshot applies the chunks that come on sub until the end,
// from the first node that answers alone.
func (n *Node) receiveSnapshot(sub *nats.Subscription, attempt string) outcome {
	w := n.startAppliers()
	defer w.stop()
	from := ""
	var walked map[string]uint64 // the walk's end, sent before the end
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
			w.inflight.Wait()   // the chunks before it made their torrents
			n.announcing.Lock() // each own completion is wholly before or after
			n.applyCounts(m.Data[1:])
			n.announcing.Unlock()
			w.ack()
		case msgWalked:
			walked = n.parseSeqs(m.Data[1:])
			w.ack()
		case msgEnd:
			upTo := n.skipHeld(m.Data[1:], walked)
			applied, refused, malformed := w.stop()
			n.settleOwnCounts(upTo)
			w.ack()
			n.log.Infof("cluster: caught up from %s: %d peers from a snapshot (%d refused, %d malformed)", from, applied, refused, malformed)
			return caughtUp
		}
	}
	return noAnswer
}

// skipHeld reads a snapshot's end, each node's last batch applied at the
// cut, so that the batches held meanwhile up to those are not counted
// again, and those between them and the walk's end (walked) are (see
// window.go); an end that does not parse skips none. It returns the
// end's Seq for this node (noBatch: none read, the snapshot's counts
// taken as they are).
func (n *Node) skipHeld(end []byte, walked map[string]uint64) (upTo uint64) {
	cut := n.parseSeqs(end)
	if cut == nil {
		return noBatch
	}
	n.rx.skipUpTo(cut, walked)
	return cut[n.opts.Node]
}

// parseSeqs reads a list of Seqs into a map; nil, and counted a bad
// batch, when it does not parse.
func (n *Node) parseSeqs(list []byte) map[string]uint64 {
	seqs := map[string]uint64{}
	if err := wire.ParseSeqs(list, func(node []byte, seq uint64) { seqs[string(node)] = seq }); err != nil {
		n.counters.badBatches.Add(1)
		return nil
	}
	return seqs
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

// applyCount applies one torrent's count, or holds it back until the end
// when the node completed the torrent during the catch-up (owncounts.go).
func (n *Node) applyCount(c wire.Count) {
	if !n.own.deferCount(c) {
		n.opts.Downloaded(&c.InfoHash, c.Downloaded)
	}
}
