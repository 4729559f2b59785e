package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
)

// A snapshot may be older than what the requester has applied: the
// serving node walks its store before the requester's own latest
// announces, or another node's latest batches, reach it. Applied as they
// come, its records would undo them (bring back a peer the requester saw
// stop, turn a seeder back into a downloader). So a catch-up first
// publishes what the outbox holds and names, in the request, that batch
// and the last batch it applied of each node; the serving node waits
// until it has applied as much before it walks (awaitApplied, at most
// appliedWait), and serves none while it catches up itself; and the
// requester keeps its own announces made during the catch-up (ownLog)
// and applies them again once the snapshot and the buffer are applied.

// Bounds of a catch-up's own announces.
const (
	ownLogRecords  = 1 << 20                // kept at most: past that, the rest are not applied again
	reapplySegment = 4096                   // records applied again at a time, announces waiting
	appliedWait    = time.Second            // the serving node's wait for the requester's last batch
	flushWait      = 500 * time.Millisecond // the requester's wait for its flusher
)

// ownLog keeps the node's own announces while a catch-up is under way,
// and what its own completions need (see owncounts.go).
type ownLog struct {
	on   atomic.Bool
	mu   sync.Mutex
	recs []wire.Record
	completions
}

// start empties the log and keeps what comes from now on.
func (l *ownLog) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = l.recs[:0]
	l.completions.reset()
	l.on.Store(true)
}

// add keeps r while the log is on and has room; a load, otherwise.
func (l *ownLog) add(r wire.Record) {
	if !l.on.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.on.Load() {
		return
	}
	if len(l.recs) < ownLogRecords {
		l.recs = append(l.recs, r)
	}
	if r.Event == bittorrent.EventCompleted {
		l.completions.taken(r.InfoHash)
	}
}

// stop calls fn with each record kept, in order, and then ends the log.
// It does so reapplySegment records at a time under announcing's write
// lock, which every announce takes for reading while the log is on: an
// announce is then either applied and kept before a segment (and applied
// again after it, being later in the log) or begun after it, so that
// applying an old record again never undoes a newer announce.
func (l *ownLog) stop(announcing sync.Locker, fn func(wire.Record)) {
	for i := 0; ; {
		announcing.Lock()
		l.mu.Lock()
		for end := min(len(l.recs), i+reapplySegment); i < end; i++ {
			fn(l.recs[i])
		}
		finished := i == len(l.recs)
		if finished {
			l.on.Store(false)
			l.recs = l.recs[:0]
			l.completions.reset()
		}
		l.mu.Unlock()
		announcing.Unlock()
		if finished {
			return
		}
	}
}

// reapplyOwn applies one of the node's own announces again, after a
// snapshot: a completion as a seeder's plain announce, since it was
// counted when the node took it.
func (n *Node) reapplyOwn(r wire.Record) {
	if r.Event == bittorrent.EventCompleted {
		r.Event = bittorrent.EventNone
	}
	var req bittorrent.AnnounceRequest
	var resp bittorrent.AnnounceResponse
	r.Request(&req)
	_ = n.opts.Apply.Announce(&req, &resp)
}

// flushNow has the flusher publish what the outbox holds, and returns
// the Seq of the last batch published (0 if the flusher does not answer
// in time, or has stopped). It waits on the flusher, so on NATS: never
// from a request's path.
func (n *Node) flushNow() uint64 {
	reply := make(chan uint64, 1)
	select {
	case n.flushReq <- reply:
	case <-n.done:
		return 0
	case <-time.After(flushWait):
		return 0
	}
	select {
	case seq := <-reply:
		return seq
	case <-time.After(flushWait):
		return 0
	}
}

// awaitApplied waits, at most appliedWait, until this node has applied
// every node's batches as far as the requester has (seqs), its own
// included: then its snapshot takes back nothing the requester applied
// (a peer it saw stop, say). Its own batches it has applied as it made
// them.
func (n *Node) awaitApplied(seqs []wire.Seq) {
	deadline := time.Now().Add(appliedWait)
	for _, s := range seqs {
		for s.Node != n.opts.Node && n.senders.lastSeqOf(s.Node) < s.Seq && time.Now().Before(deadline) && !n.closed() {
			time.Sleep(5 * time.Millisecond)
		}
	}
}
