package cluster

import (
	"errors"
	"math"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
)

// maxBuffered is the most bytes of batches held during a catch-up; more
// are dropped (and counted), the snapshot covering most of them.
const maxBuffered = 64 << 20

// pending is a batch that arrived during a catch-up.
type pending struct {
	node string // the subject's node token
	data []byte
}

// receiver applies the batches of other nodes. NATS calls onMessage from
// one goroutine; the catch-up turns buffering on and off.
type receiver struct {
	node *Node

	mu sync.Mutex // held while a batch is applied or buffered
	// buffering counts who wants batches held: a catch-up, a snapshot
	// being walked; they are applied when the last one stops.
	buffering int
	buffer    []pending
	bufBytes  int
	// skip, set by a catch-up from its snapshot's end, is each node's
	// last batch the snapshot holds: held batches up to it are applied
	// again uncounted, their completions as plain seeders' announces (the
	// snapshot's count has them), so that their stops still remove
	// peers the node held from before.
	skip      map[string]uint64
	uncounted bool
	// windows are the last snapshot's spans (window.go); forced: the
	// batch being applied is in one, its completions counted whatever
	// the store holds of the peer.
	windows windows
	forced  bool
	// closed: the node closed; a handler still running applies nothing
	// more (the store may be freed once Close returns).
	closed  bool
	parser  wire.Parser
	req     bittorrent.AnnounceRequest
	resp    bittorrent.AnnounceResponse
	applyFn func(wire.Record) // applyRecord, made once
}

// init ties the receiver to its node.
func (rx *receiver) init(n *Node) {
	rx.node = n
	rx.applyFn = rx.applyRecord
}

// onMessage takes one batch from NATS: checks its subject, then buffers
// it during a catch-up or applies it.
func (rx *receiver) onMessage(m *nats.Msg) {
	n := rx.node
	n.counters.bytesIn.Add(uint64(len(m.Data)))
	node, ok := subjectNode(m.Subject, n.opts.Name)
	if !ok {
		n.counters.badBatches.Add(1)
		return
	}
	if node == n.opts.Node { // a clash only if it is a batch of ours to the letter
		if _, ok := wire.SeqOf(m.Data); ok && headerNames(m.Data, node) {
			n.leave("a batch on " + m.Subject)
		} else {
			n.counters.badBatches.Add(1)
		}
		return
	}
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if rx.closed {
		return
	}
	if rx.buffering == 0 {
		rx.apply(node, m.Data, false)
		return
	}
	if rx.bufBytes+len(m.Data) > maxBuffered {
		n.counters.badBatches.Add(1)
		return
	}
	rx.buffer = append(rx.buffer, pending{node: node, data: m.Data}) // nats.go gives each message its own bytes
	rx.bufBytes += len(m.Data)
}

// subjectNode is the node token of a subject <name>.<node>.announce.
func subjectNode(subject, name string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, name+".")
	if !ok {
		return "", false
	}
	node, ok := strings.CutSuffix(rest, ".announce")
	return node, ok && wire.ValidNode(node)
}

// headerNames reports whether a batch's header names node, read before
// parsing so that no record of a mismatched batch is applied.
func headerNames(data []byte, node string) bool {
	return len(data) >= 2 && int(data[1]) <= len(data)-2 && string(data[2:2+int(data[1])]) == node
}

// apply applies one batch that came on node's subject, held during a
// catch-up or not; rx.mu is held. Its completions count as skipUpTo and
// the snapshot's windows say, else by the store's rule.
func (rx *receiver) apply(node string, data []byte, held bool) {
	n := rx.node
	if !headerNames(data, node) {
		n.counters.badBatches.Add(1)
		return
	}
	seq, _ := wire.SeqOf(data) // headerNames checked the header's length
	rx.uncounted = held && seq <= rx.skip[node]
	rx.forced = !rx.uncounted && rx.windows.covers(node, seq)
	h, st, err := rx.parser.Parse(data, rx.applyFn)
	var format wire.FormatError
	if errors.Is(err, wire.ErrHeader) || errors.As(err, &format) {
		n.counters.badBatches.Add(1)
		return
	}
	n.counters.dropped.Add(uint64(st.Malformed))
	lag, back := n.senders.heard(&h, n.clock())
	n.journal.heard(h.Node)
	n.counters.lagBits.Store(math.Float64bits(lag.Seconds()))
	if n.opts.ObserveLag != nil {
		n.opts.ObserveLag(lag.Seconds())
	}
	if back && n.behind.Load() {
		n.wantCatchUp() // a node to catch up from, at last
	}
}

// applyRecord applies one valid record through Options.Apply, counting
// it applied or refused.
func (rx *receiver) applyRecord(r wire.Record) {
	if rx.uncounted && r.Event == bittorrent.EventCompleted {
		r.Event = bittorrent.EventNone
	}
	r.Request(&rx.req)
	rx.req.Counted = rx.forced && r.Event == bittorrent.EventCompleted
	rx.resp.Reset()
	if err := rx.node.opts.Apply.Announce(&rx.req, &rx.resp); err != nil {
		rx.node.counters.refused.Add(1)
		return
	}
	rx.node.counters.applied.Add(1)
}

// close waits for a batch being applied, and has those that come later
// dropped: nats.go's Close does not wait for a handler already running.
func (rx *receiver) close() {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	rx.closed = true
}

// startBuffering holds the batches that arrive from now on.
func (rx *receiver) startBuffering() {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	rx.buffering++
}

// skipUpTo has the held batches of each node up to its Seq in cut
// applied uncounted: a snapshot holds them; and those after it, up to its
// Seq in walked, counted whatever the store holds (window.go).
func (rx *receiver) skipUpTo(cut, walked map[string]uint64) {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	rx.skip = cut
	rx.windows = newWindows(cut, walked)
}

// stopBuffering ends one want of holding; at the last, it applies the
// batches held, in their order (those skipUpTo names uncounted), and applies
// those that arrive from now on as they come.
func (rx *receiver) stopBuffering() {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if rx.buffering--; rx.buffering > 0 {
		return
	}
	for i := range rx.buffer {
		p := &rx.buffer[i]
		rx.apply(p.node, p.data, true)
		*p = pending{}
	}
	rx.buffer, rx.bufBytes, rx.skip, rx.uncounted, rx.forced = rx.buffer[:0], 0, nil, false, false
}
