package cluster

import (
	"sync"
	"sync/atomic"
	"time"
)

// The outage journal's bounds.
const (
	// journalBytes is the most bytes of batches kept while NATS is down:
	// at about 20 bytes an announce, some 3 million announces, a minute
	// and a half at 30,000 a second.
	journalBytes = 64 << 20
	// journalWait is the longest a reconnected node holds its journal
	// for the nodes live before the outage to be heard again: each
	// retries at most every 5 s (and a quarter), and is heard within a
	// second of its return.
	journalWait = 10 * time.Second
)

// journal keeps the batches of announces a node accepts while NATS is
// away, and sends them once the nodes that were live before the outage
// are back: core NATS keeps nothing for a node that is not connected, and
// a snapshot from one node holds that node's outage announces, not a
// third's. Until it is sent, batches made after the reconnection join it,
// so that a node's announces never arrive out of their order. The
// flusher keeps and sends it; the NATS handlers and the receiver tell it
// of the connection and of the nodes heard.
type journal struct {
	holding atomic.Bool // batches go to the journal, not to NATS

	mu      sync.Mutex
	batches []kept
	bytes   int
	await   map[string]bool // nodes live before the outage, not yet heard again
	sendBy  time.Duration   // on the node's clock; 0: NATS not yet seen back
	full    bool            // a batch did not fit (logged once an outage)
}

// kept is a batch the journal holds.
type kept struct {
	data    []byte
	records int
}

// lost starts an outage, unless one is under way: live are the nodes
// heard from just before it.
func (j *journal) lost(live []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.holding.Load() { // a second loss before the journal went: same list
		return
	}
	j.await = make(map[string]bool, len(live))
	for _, name := range live {
		j.await[name] = true
	}
	j.holding.Store(true)
}

// heard notes a batch from node; cheap when no journal is held.
func (j *journal) heard(node string) {
	if !j.holding.Load() {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.await, node)
}

// keep adds a batch of records (its bytes are copied) and reports whether
// there was room.
func (j *journal) keep(batch []byte, records int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.bytes+len(batch) > journalBytes {
		return false
	}
	j.batches = append(j.batches, kept{data: append([]byte(nil), batch...), records: records})
	j.bytes += len(batch)
	return true
}

// overflowed reports whether this is the outage's first batch that did
// not fit.
func (j *journal) overflowed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	first := !j.full
	j.full = true
	return first
}

// due hands over the batches kept once NATS is back (connected says it
// is now) and every node awaited was heard, or journalWait after NATS was
// first seen back, or at once with force; from then on batches go
// straight to NATS again.
func (j *journal) due(now time.Duration, connected, force bool) ([]kept, bool) {
	if !j.holding.Load() {
		return nil, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !connected {
		j.sendBy = 0 // away again: wait anew once back
		return nil, false
	}
	if j.sendBy == 0 {
		j.sendBy = now + journalWait
	}
	if len(j.await) > 0 && now < j.sendBy && !force {
		return nil, false
	}
	batches := j.batches
	j.batches, j.bytes, j.await, j.full, j.sendBy = nil, 0, nil, false, 0
	j.holding.Store(false)
	return batches, true
}

// discard drops what is kept and returns the number of its records.
func (j *journal) discard() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	records := 0
	for _, b := range j.batches {
		records += b.records
	}
	j.batches, j.bytes = nil, 0
	j.holding.Store(false)
	return records
}
