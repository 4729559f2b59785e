package cluster

import (
	"math"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
)

// A catch-up's own completions. A snapshot's counts hold the requester's
// completions in its batches up to the end's Seq for it, and none after
// (the serving node's cut); the requester's store counted each of its
// own completions when it took it. The larger of the two counts would
// lose those in later batches whenever the snapshot's is the larger. So
// the snapshot's count of a torrent the node completed during the
// catch-up is held back until the end, then raised by the node's
// completions in batches after that Seq: the flusher tells the log which
// batch each went in.

// maxNotedCompletions bounds the completions a catch-up notes: as many
// as the announces it keeps (ownLogRecords).
const maxNotedCompletions = ownLogRecords

// noBatch is the Seq noted for completions that went in no batch.
const noBatch = math.MaxUint64

// sentCompletion is one of the node's completions and the batch it went
// in (noBatch: none, it was dropped).
type sentCompletion struct {
	hash bittorrent.InfoHash
	seq  uint64
}

// completions is the catch-up's record of its own completions; ownLog's
// lock guards it.
type completions struct {
	hashes   map[bittorrent.InfoHash]bool   // torrents completed during the catch-up
	sentIn   []sentCompletion               // each completion's batch, as the flusher sent it
	deferred map[bittorrent.InfoHash]uint32 // the snapshot's counts held back
}

// reset forgets everything.
func (c *completions) reset() {
	clear(c.hashes)
	clear(c.deferred)
	c.sentIn = c.sentIn[:0]
}

// taken notes a completion the node took.
func (c *completions) taken(h bittorrent.InfoHash) {
	if c.hashes == nil {
		c.hashes = map[bittorrent.InfoHash]bool{}
	}
	c.hashes[h] = true
}

// sent notes that the completions of hashes went in batch seq.
func (l *ownLog) sent(seq uint64, hashes []bittorrent.InfoHash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range hashes {
		if l.on.Load() && len(l.sentIn) < maxNotedCompletions {
			l.sentIn = append(l.sentIn, sentCompletion{hash: h, seq: seq})
		}
	}
}

// deferCount holds back a snapshot's count of a torrent the node
// completed during the catch-up, and reports whether it did.
func (l *ownLog) deferCount(c wire.Count) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.on.Load() || !l.hashes[c.InfoHash] {
		return false
	}
	if l.deferred == nil {
		l.deferred = map[bittorrent.InfoHash]uint32{}
	}
	l.deferred[c.InfoHash] = max(l.deferred[c.InfoHash], c.Downloaded)
	return true
}

// settle returns each count held back raised by the node's completions of
// its torrent in batches after upTo, and forgets them.
func (l *ownLog) settle(upTo uint64) []wire.Count {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sentIn {
		if n, ok := l.deferred[s.hash]; ok && s.seq > upTo {
			l.deferred[s.hash] = n + 1
		}
	}
	list := make([]wire.Count, 0, len(l.deferred))
	for h, n := range l.deferred {
		list = append(list, wire.Count{InfoHash: h, Downloaded: n})
	}
	clear(l.deferred)
	return list
}

// settleOwnCounts applies the counts held back once a snapshot has ended:
// upTo is the end's Seq for this node. It first has the flusher send what
// the outbox holds, so that every completion taken before the snapshot's
// counts were applied is noted in its batch. A Seq past this node's last
// is one of an earlier run of the node (the server had not yet heard
// this one).
func (n *Node) settleOwnCounts(upTo uint64) {
	if seq := n.flushNow(); seq != 0 && upTo != noBatch && upTo > seq {
		upTo = 0 // the serving node's Seq for this node is its previous run's: it holds none of this run's batches
	}
	for _, c := range n.own.settle(upTo) {
		n.opts.Downloaded(&c.InfoHash, c.Downloaded)
	}
}
