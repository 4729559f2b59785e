package cluster

import (
	"errors"
	"net/netip"
	"runtime"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
	"github.com/trakx/trakx/internal/swarm"
)

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
