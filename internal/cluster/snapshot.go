package cluster

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
	"github.com/trakx/trakx/internal/swarm"
)

// Serving snapshots' bounds.
const (
	chunkBytesMost = 1 << 20         // NATS's default max_payload
	chunkMargin    = 256             // room for the kind byte and slack
	ackWait        = 5 * time.Second // for the requester to apply a chunk
	ackWindow      = 4               // chunks sent and not yet acknowledged
)

// onSnapshotRequest answers a request for a snapshot: busy when one is
// being served, this node has not caught up itself, holds an outage's
// journal (its counts hold completions its batches do not yet), or the
// server refuses its announces (its store may hold announces it could not
// publish: under another node's name, say), else it streams one from a
// goroutine of its own.
func (n *Node) onSnapshotRequest(m *nats.Msg) {
	to, ok := n.askerOf(m.Subject)
	attempt, seqs, readable := parseSnapshotRequest(m.Data)
	nc := n.conn.Load()
	switch {
	case n.closed() || nc == nil:
		return
	case !ok || !readable:
		n.counters.badBatches.Add(1)
		return
	case !n.everUp.Load() || n.publishDenied.Load() || n.journal.holding.Load() || !n.role.CompareAndSwap(idle, serving):
		n.counters.refusedSnapshots.Add(1)
		_ = nc.Publish(n.snapshotStream(n.opts.Node, to, attempt), []byte{msgBusy})
		return
	}
	n.counters.served.Add(1)
	if !n.goServe(func() {
		defer n.role.Store(idle)
		n.awaitApplied(seqs)
		n.serveSnapshot(to, attempt)
	}) {
		n.role.Store(idle)
	}
}

// goServe runs serve in a goroutine that Close waits for (it walks the
// store, which the daemon frees after Close), unless the node is closing;
// it reports whether it did.
func (n *Node) goServe(serve func()) bool {
	n.servesMu.Lock()
	defer n.servesMu.Unlock()
	if n.closed() {
		return false
	}
	n.serves.Add(1)
	go func() {
		defer n.serves.Done()
		serve()
	}()
	return true
}

// chunker gathers a snapshot's records into chunks and sends each, and
// then the completion counts in lists.
type chunker struct {
	node    *Node
	stream  string // the subject the snapshot goes on
	budget  int
	recs    []wire.Record
	size    int // the chunk's bytes so far, kind and header included
	buf     []byte
	seq     uint64
	private bool
	failed  error
	// acks is where the requester acknowledges each message; sent and
	// acked count them, so that at most ackWindow are unacknowledged.
	acks        *nats.Subscription
	sent, acked int
}

// serveSnapshot streams the store's peers to node to, for its attempt, in
// chunks and then the end, each acknowledged by the requester once
// applied, at most ackWindow of them unacknowledged (one, until the
// first is: a requester that never acknowledges costs one chunk): the
// next chunk is made while the requester applies the last, and the
// server never outruns it by more.
func (n *Node) serveSnapshot(to, attempt string) {
	nc := n.conn.Load()
	budget := chunkBytesMost
	if n.opts.SnapshotChunkBytes > 0 {
		budget = n.opts.SnapshotChunkBytes
	}
	budget = min(budget, int(nc.MaxPayload())) - chunkMargin
	c := &chunker{node: n, stream: n.snapshotStream(n.opts.Node, to, attempt), budget: max(budget, 2*wire.MaxHeaderSize), size: 1 + wire.MaxHeaderSize, private: n.replicatePrivate()}
	c.acks, c.failed = nc.SubscribeSync(n.snapshotAcks(to, n.opts.Node, attempt))
	if c.failed == nil {
		defer c.acks.Unsubscribe()
	}
	began := time.Now()
	// The counts hold every batch up to these and none after: the
	// requester applies those it held meanwhile uncounted.
	counts, seqs, err := n.cut()
	if c.failed == nil {
		c.failed = err
	}
	if c.failed == nil {
		n.opts.Snapshot(c.add)
	}
	if c.failed == nil {
		c.sendCounts(counts)
	}
	if c.failed == nil {
		c.failed = c.request(wire.AppendSeqs([]byte{msgWalked}, n.walked()), ackWindow-1)
	}
	if c.failed == nil {
		c.failed = c.request(wire.AppendSeqs([]byte{msgEnd}, seqs), 0)
	}
	if c.failed != nil {
		if !n.closed() {
			n.log.Warnf("cluster: snapshot for %q broken off: %v", to, c.failed)
		}
		return
	}
	n.log.Infof("cluster: served a snapshot to %q: %d chunks in %v", to, c.seq, time.Since(began).Round(time.Millisecond))
}

// walked is each node's last batch applied as a walk ends, this node's
// own after it publishes what its outbox holds (so that its batches the
// walk may have seen go before the end).
func (n *Node) walked() []wire.Seq {
	own := n.flushNow()
	if own == 0 {
		own = n.pubSeq.Load()
	}
	return append(n.senders.applied(), wire.Seq{Node: n.opts.Node, Seq: own})
}

// add adds a record to the chunk, sending the chunk first when the record
// would take it past its budget. It returns false once sending failed.
func (c *chunker) add(r wire.Record) bool {
	if !r.Valid() || (!c.private && wire.IsPrivate(r.Addr)) {
		return true
	}
	same := len(c.recs) > 0 && c.recs[len(c.recs)-1].InfoHash == r.InfoHash
	size := recordBytes(&r, same)
	if c.size+size > c.budget && len(c.recs) > 0 {
		if c.send(); c.failed != nil {
			return false
		}
		size = recordBytes(&r, false)
	}
	c.recs = append(c.recs, r)
	c.size += size
	return true
}

// sendCounts sends the chunk gathered, then the counts in lists within
// the budget: after every chunk, so that the requester holds the
// torrents when it applies their counts.
func (c *chunker) sendCounts(counts []wire.Count) {
	if len(c.recs) > 0 {
		if c.send(); c.failed != nil {
			return
		}
	}
	per := max(1, (c.budget-1-binary.MaxVarintLen64)/wire.MaxCountSize)
	for len(counts) > 0 && c.failed == nil {
		list := counts[:min(per, len(counts))]
		counts = counts[len(list):]
		c.buf = wire.AppendCounts(append(c.buf[:0], msgCounts), list)
		c.failed = c.request(c.buf, ackWindow-1)
	}
}

// recordBytes is the bytes r takes on the wire.
func recordBytes(r *wire.Record, sameHash bool) int {
	n := 1 + 4 + 2
	if r.Addr.Is6() {
		n += 12
	}
	if !sameHash {
		n += len(r.InfoHash)
	}
	return n
}

// send sends the chunk gathered and empties it.
func (c *chunker) send() {
	c.seq++
	h := wire.Header{Node: c.node.opts.Node, Seq: c.seq, SentNanos: int64(c.node.clock())}
	c.buf = wire.AppendBatch(append(c.buf[:0], msgChunk), h, c.recs)
	c.failed = c.request(c.buf, ackWindow-1)
	c.recs, c.size = c.recs[:0], 1+wire.MaxHeaderSize
}

// request sends one message of the snapshot, then waits for
// acknowledgements until no more than unacked messages lack one.
func (c *chunker) request(data []byte, unacked int) error {
	nc := c.node.conn.Load()
	if err := nc.Publish(c.stream, data); err != nil {
		return err
	}
	c.sent++
	c.node.counters.bytesOut.Add(uint64(len(data)))
	if c.acked == 0 {
		unacked = 0 // a requester is awaited once before it is sent more
	}
	for c.sent-c.acked > unacked {
		if _, err := c.acks.NextMsg(ackWait); err != nil {
			return err
		}
		c.acked++
	}
	return nil
}

// StoreSnapshot is Options.Snapshot for a swarm.Store: it walks the store
// torrent by torrent and yields each peer as a record (a seeder as such,
// a partial seed as event paused, others as event none).
func StoreSnapshot(s *swarm.Store) func(yield func(wire.Record) bool) {
	return func(yield func(wire.Record) bool) {
		stop := errStop{}
		_, _ = s.Walk(func(t *swarm.Torrent) error {
			for _, p := range t.Peers4 {
				if !yield(snapshotRecord(t.Hash, netip.AddrFrom4(p.IP), p.Port, p.Seeder, p.Partial)) {
					return stop
				}
			}
			for _, p := range t.Peers6 {
				if !yield(snapshotRecord(t.Hash, netip.AddrFrom16(p.IP), p.Port, p.Seeder, p.Partial)) {
					return stop
				}
			}
			return nil
		})
	}
}

// StoreCounts is Options.Counts for a swarm.Store: every torrent's
// completion count, copied a shard at a time (swarm.Store.EachTorrent).
func StoreCounts(s *swarm.Store) func(yield func(h *bittorrent.InfoHash, downloaded uint32)) {
	return func(yield func(*bittorrent.InfoHash, uint32)) {
		s.EachTorrent(func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats) { yield(h, st.Downloaded) })
	}
}

// StoreDownloaded is Options.Downloaded for a swarm.Store: it raises a
// torrent's count to at least n, when the store holds the torrent (one
// it does not hold stays absent: a torrent lives by its peers).
func StoreDownloaded(s *swarm.Store) func(h *bittorrent.InfoHash, n uint32) {
	return func(h *bittorrent.InfoHash, n uint32) {
		_, _ = s.Restore(&swarm.Torrent{Hash: *h, Downloaded: n}, 0, uint32(time.Now().Unix()))
	}
}

// StoreApplyTorrent is Options.ApplyTorrent for a swarm.Store behind
// admit (the access list's verdict): a snapshot's run of one torrent's
// peers goes into the store at once, into a list sized once
// (swarm.Store.Restore, as a database load does), when the store does
// not hold the torrent yet, admit lets it in and the store's limits
// leave room for it; ok is false otherwise, and the caller applies the
// peers one by one (then refused and counted as any announce is). The
// limits are read, not reserved: appliers side by side may pass them by
// a torrent's peers each.
func StoreApplyTorrent(s *swarm.Store, admit func(*bittorrent.InfoHash) error) func(t *swarm.Torrent) (kept int, ok bool) {
	return func(t *swarm.Torrent) (int, bool) {
		if st, _ := s.Scrape(&t.Hash); st.Complete+st.Incomplete > 0 || admit(&t.Hash) != nil {
			return 0, false // held: its peers are updated one by one
		}
		cfg := s.Config()
		peers, torrents := s.Totals()
		if peers+int64(len(t.Peers4)+len(t.Peers6)) > cfg.MaxPeers || torrents >= cfg.MaxTorrents {
			return 0, false
		}
		now := uint32(time.Now().Unix()) // as fresh as an announce applied now
		for i := range t.Peers4 {
			t.Peers4[i].LastSeen = now
		}
		for i := range t.Peers6 {
			t.Peers6[i].LastSeen = now
		}
		kept, _ := s.Restore(t, 0, now)
		return kept, true
	}
}

// errStop ends a Walk when the snapshot's reader stops.
type errStop struct{}

// Error says why the walk stopped.
func (errStop) Error() string { return "snapshot stopped" }

// snapshotRecord is the record a stored peer travels as in a snapshot.
func snapshotRecord(h bittorrent.InfoHash, a netip.Addr, port uint16, seeder, partial bool) wire.Record {
	r := wire.Record{InfoHash: h, Addr: a, Port: port, Seeder: seeder}
	if partial && !seeder {
		r.Event = bittorrent.EventPaused
	}
	return r
}
