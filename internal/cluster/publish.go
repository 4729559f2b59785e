package cluster

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
)

// Publishing's bounds.
const (
	flushEvery = 100 * time.Millisecond // the longest a record waits
	heartbeat  = time.Second            // the longest a node is silent
	batchBytes = 32 << 10               // a batch is sent when it reaches this
	// outboxRecords is the most records waiting for the flusher: at 32
	// bytes of memory each, 2 MiB, a second of 64k announces/s.
	outboxRecords = 1 << 16
	// kickRecords wakes the flusher before its tick: a batch's worth.
	kickRecords = batchBytes / wire.MaxRecordSize
)

// outbox holds the records accepted since the flusher last took them. It
// is two buffers of fixed capacity: announces append to one under a short
// lock while the flusher sends the other.
type outbox struct {
	mu    sync.Mutex
	recs  []wire.Record
	spare []wire.Record
	kick  chan struct{}
	// cutAt, when cut is set, is how many of recs came before a
	// snapshot's cut: the flusher ends a batch there and sends cut that
	// batch's Seq (see barrier).
	cutAt int
	cut   chan uint64
}

// init makes the buffers.
func (o *outbox) init() {
	o.recs = make([]wire.Record, 0, outboxRecords)
	o.spare = make([]wire.Record, 0, outboxRecords)
	o.kick = make(chan struct{}, 1)
}

// add appends r and reports whether there was room; it never waits on
// anything but the lock, and allocates nothing.
func (o *outbox) add(r wire.Record) bool {
	o.mu.Lock()
	if len(o.recs) == cap(o.recs) {
		o.mu.Unlock()
		return false
	}
	o.recs = append(o.recs, r)
	n := len(o.recs)
	o.mu.Unlock()
	if n == kickRecords {
		select {
		case o.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// take hands the flusher the records gathered, which it may use until it
// calls take again, and the barrier among them, if any (cut nil: none).
func (o *outbox) take() (recs []wire.Record, cutAt int, cut chan uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	taken := o.recs
	o.recs, o.spare = o.spare[:0], taken
	cutAt, cut, o.cut = o.cutAt, o.cut, nil
	return taken, cutAt, cut
}

// barrier marks the records gathered so far, without waiting: the
// flusher sends them, ends a batch there and sends the returned channel
// the Seq of that batch (of the last batch sent, when none are waiting):
// every record added before barrier went in a batch up to that Seq,
// every record added after it in a later one. Only one barrier may be
// pending at a time.
func (o *outbox) barrier() <-chan uint64 {
	cut := make(chan uint64, 1)
	o.mu.Lock()
	o.cutAt, o.cut = len(o.recs), cut
	o.mu.Unlock()
	select {
	case o.kick <- struct{}{}:
	default:
	}
	return cut
}

// publishing is the decorator Wrap returns.
type publishing struct {
	next bittorrent.Tracker
	node *Node
}

// Wrap returns a tracker that passes every request to next and publishes
// each announce next accepts (see the package doc). next must say in
// AnnounceResponse.Counted which completions it counted, as swarm.Store
// does: the others travel as plain announces. The frontends are handed
// it; Options.Apply must not be it.
func (n *Node) Wrap(next bittorrent.Tracker) bittorrent.Tracker {
	return &publishing{next: next, node: n}
}

// Announce passes the announce on and, when it is accepted, queues its
// record for publishing. A completion, and any announce while a catch-up
// keeps the node's own (ownLog), is taken and queued under announcing's
// read lock: a snapshot's cut, and the catch-up applying the node's own
// announces again, find each one either wholly done or not begun.
func (p *publishing) Announce(req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	if req.Event == bittorrent.EventCompleted || p.node.own.on.Load() {
		p.node.announcing.RLock()
		defer p.node.announcing.RUnlock()
	}
	if err := p.next.Announce(req, resp); err != nil {
		return err
	}
	p.node.publish(req, resp.Counted)
	return nil
}

// Scrape passes the scrape on.
func (p *publishing) Scrape(h *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	return p.next.Scrape(h)
}

// publish queues an accepted announce's record, unless it is not to
// travel: invalid (loopback and the like), or private and not allowed. A
// completion the store did not count (a repeat, or from a peer already
// seeding) travels as a plain announce, so that a completed record is
// always one its publisher counted (window.go relies on it).
func (n *Node) publish(req *bittorrent.AnnounceRequest, counted bool) {
	r := wire.RecordOf(req)
	if r.Event == bittorrent.EventCompleted && !counted {
		r.Event = bittorrent.EventNone
	}
	if !r.Valid() || n.left.Load() || (wire.IsPrivate(r.Addr) && !n.replicatePrivate()) {
		return
	}
	if !n.out.add(r) {
		n.counters.dropped.Add(1)
	}
	n.own.add(r)
}

// replicatePrivate is Options.ReplicatePrivate, false when unset.
func (n *Node) replicatePrivate() bool {
	return n.opts.ReplicatePrivate != nil && n.opts.ReplicatePrivate()
}

// flusher sends the outbox's records; only its goroutine uses it.
type flusher struct {
	node  *Node
	batch wire.Batch
	buf   []byte
	seq   uint64
	last  time.Duration // when a batch was last sent, on the node's clock
	// completed are the torrents of the completions in the batch being
	// gathered, noted while a catch-up keeps its own announces (ownLog).
	completed []bittorrent.InfoHash
}

// runFlusher sends the outbox every flushEvery, or sooner when a batch's
// worth is waiting, and a heartbeat when idle; a last time at Close.
func (n *Node) runFlusher() {
	defer n.flushed.Done()
	f := &flusher{node: n, buf: make([]byte, 0, batchBytes+wire.MaxHeaderSize)}
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.done:
			f.flush()
			f.sendJournal(true) // leaving: the nodes awaited will not hear more
			return
		case <-tick.C:
		case <-n.out.kick:
		case reply := <-n.flushReq:
			f.flush()
			reply <- f.seq
			continue
		}
		f.flush()
	}
}

// flush sends the records waiting, in batches under batchBytes, or an
// empty batch when nothing was sent for a heartbeat.
func (f *flusher) flush() {
	f.sendJournal(false)
	recs, cutAt, cut := f.node.out.take()
	if cut != nil {
		f.gather(recs[:cutAt])
		if f.batch.Len() > 0 {
			f.send()
		}
		cut <- f.seq
		recs = recs[cutAt:]
	}
	if len(recs) == 0 && f.node.clock()-f.last < heartbeat {
		return
	}
	f.gather(recs)
	f.send()
}

// gather adds records to the batch, sending it whenever it is full.
func (f *flusher) gather(recs []wire.Record) {
	noting := f.node.own.on.Load()
	for _, r := range recs {
		if f.batch.Bound()+wire.MaxRecordSize > batchBytes {
			f.send()
		}
		f.batch.Add(r)
		if noting && r.Event == bittorrent.EventCompleted {
			f.completed = append(f.completed, r.InfoHash)
		}
	}
}

// send publishes the batch gathered and empties it; while NATS is away,
// and until the outage's journal has gone, it keeps the batch in the
// journal instead. A heartbeat goes only to a live connection. A batch
// that cannot go, or be kept, is counted dropped.
func (f *flusher) send() {
	n := f.node
	defer f.batch.Reset()
	nc := n.conn.Load()
	switch {
	case nc == nil || nc.IsClosed() || n.left.Load() || (n.closed() && !nc.IsConnected()):
		n.counters.dropped.Add(uint64(f.batch.Len())) // nothing will send it
		f.noteCompleted(noBatch)                      // in no batch any node applies
		return
	case f.batch.Len() == 0 && !nc.IsConnected():
		return
	}
	seq := f.seq + 1
	if f.batch.Len() == 0 && n.journal.holding.Load() {
		// A heartbeat while the journal waits names the last batch
		// published: with a Seq of its own it would pass the journal's
		// batches, which then looked older than what the others applied.
		seq = n.pubSeq.Load()
	} else {
		f.seq = seq
	}
	f.noteCompleted(seq)
	f.last = n.clock()
	f.buf = f.batch.AppendTo(f.buf[:0], wire.Header{Node: n.opts.Node, Seq: seq, SentNanos: int64(f.last)})
	if f.batch.Len() > 0 && f.hold(nc) {
		return
	}
	f.publish(nc, f.buf, f.batch.Len())
}

// noteCompleted tells the catch-up's log which batch the completions
// gathered went in.
func (f *flusher) noteCompleted(seq uint64) {
	if len(f.completed) > 0 {
		f.node.own.sent(seq, f.completed)
		f.completed = f.completed[:0]
	}
}

// hold keeps the encoded batch in the outage's journal when NATS is away
// or the journal has not gone yet, and reports whether it did.
func (f *flusher) hold(nc *nats.Conn) bool {
	n := f.node
	if !nc.IsConnected() && !n.journal.holding.Load() {
		n.journal.lost(n.senders.liveNames(n.clock()))
	}
	if !n.journal.holding.Load() {
		return false
	}
	if !n.journal.keep(f.buf, f.batch.Len()) {
		n.counters.dropped.Add(uint64(f.batch.Len()))
		if n.journal.overflowed() {
			n.log.Warnf("cluster: NATS has been away for more than %d MiB of announces; until it is back, this node's further announces reach the others only when their peers announce again", journalBytes>>20)
		}
	}
	return true
}

// publish publishes one encoded batch of records and counts it.
func (f *flusher) publish(nc *nats.Conn, data []byte, records int) {
	n := f.node
	if err := nc.Publish(n.subjectOut, data); err != nil || n.publishDenied.Load() {
		n.counters.dropped.Add(uint64(records))
		return
	}
	n.counters.published.Add(uint64(records))
	n.counters.bytesOut.Add(uint64(len(data)))
	if seq, ok := wire.SeqOf(data); ok {
		n.pubSeq.Store(seq)
	}
}

// sendJournal sends the outage's journal once it is due, or, when now
// is set, at once if NATS is there (the node is closing).
func (f *flusher) sendJournal(now bool) {
	n := f.node
	nc := n.conn.Load()
	if nc == nil || n.left.Load() {
		return
	}
	batches, ok := n.journal.due(n.clock(), nc.IsConnected(), now)
	if !ok {
		return
	}
	records := 0
	for _, b := range batches {
		f.publish(nc, b.data, b.records)
		records += b.records
	}
	if records > 0 {
		n.log.Infof("cluster: sent the %d announces this node accepted while NATS was away", records)
	}
}
