package cluster

import (
	"math"
	"sync/atomic"
)

// Stats are a node's counters, for the daemon's metrics.
type Stats struct {
	Connected bool // a NATS connection is up and the node is in the cluster
	Left      bool // the node left the cluster (its name was in use)
	Nodes     int  // live nodes, this one included
	// Deltas, in records: published by this node; applied from others;
	// refused by Apply (access list, store full); dropped (outbox full,
	// NATS down, malformed record).
	Published, Applied, Refused, Dropped uint64
	// BadBatches are batches refused whole: a malformed header, a subject
	// that does not name the header's node, a later format; and batches
	// dropped unread because the catch-up buffer was full.
	BadBatches uint64
	// BytesOut and BytesIn count batch payloads, snapshots included.
	BytesOut, BytesIn uint64
	CatchUps          uint64 // snapshots received and applied
	SnapshotPeers     uint64 // records applied from snapshots
	SnapshotsServed   uint64
	SnapshotsRefused  uint64 // requests answered busy
	// ApplyLagSeconds is the lag of the last batch applied, from its
	// sender's send to its application here (see the package doc).
	ApplyLagSeconds float64
}

// counters are the atomic counters behind Stats.
type counters struct {
	published, applied, refused, dropped atomic.Uint64
	badBatches                           atomic.Uint64
	bytesOut, bytesIn                    atomic.Uint64
	catchUps, snapshotPeers              atomic.Uint64
	served, refusedSnapshots             atomic.Uint64
	lagBits                              atomic.Uint64 // float64 seconds
}

// Stats returns the node's counters now.
func (n *Node) Stats() Stats {
	c := &n.counters
	return Stats{
		Connected:        n.connected.Load() && !n.left.Load(),
		Left:             n.left.Load(),
		Nodes:            n.senders.live(n.clock()),
		Published:        c.published.Load(),
		Applied:          c.applied.Load(),
		Refused:          c.refused.Load(),
		Dropped:          c.dropped.Load(),
		BadBatches:       c.badBatches.Load(),
		BytesOut:         c.bytesOut.Load(),
		BytesIn:          c.bytesIn.Load(),
		CatchUps:         c.catchUps.Load(),
		SnapshotPeers:    c.snapshotPeers.Load(),
		SnapshotsServed:  c.served.Load(),
		SnapshotsRefused: c.refusedSnapshots.Load(),
		ApplyLagSeconds:  math.Float64frombits(c.lagBits.Load()),
	}
}
