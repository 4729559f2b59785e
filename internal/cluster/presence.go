package cluster

import (
	"sync"
	"time"

	"github.com/trakx/trakx/internal/cluster/wire"
)

// Presence's bounds.
const (
	liveWindow  = 3 * time.Second // a node heard from within it is live
	forgetAfter = time.Minute     // a sender silent this long is forgotten
	maxSenders  = 256             // the most senders remembered
)

// sender is what the receiver remembers of one publishing node.
type sender struct {
	heard    time.Duration // the last batch applied, on our clock
	offset   int64         // the least (applied - sent) seen, in ns
	lastSeq  uint64
	lastSent int64
}

// senders are the nodes heard from, by name. The receiver writes them,
// Stats and the catch-up read them.
type senders struct {
	mu     sync.Mutex
	byName map[string]*sender
}

// init makes the map.
func (s *senders) init() { s.byName = make(map[string]*sender) }

// heard records a batch of node h applied at now (our clock) and returns
// its apply lag: its (now - sent) less the sender's least (now - sent)
// so far; and whether the sender is back, new or silent for more than
// liveWindow. A sender whose Seq or clock went back restarted (or
// reconnected): its offset starts again.
func (s *senders) heard(h *wire.Header, now time.Duration) (lag time.Duration, back bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := int64(now) - h.SentNanos
	sd := s.byName[h.Node]
	if sd == nil {
		s.forget(now)
		if len(s.byName) >= maxSenders {
			return 0, false
		}
		sd = &sender{offset: d, heard: now - liveWindow - 1}
		s.byName[h.Node] = sd
	}
	back = now-sd.heard > liveWindow
	if h.Seq <= sd.lastSeq || h.SentNanos < sd.lastSent {
		sd.offset = d
	}
	sd.heard, sd.lastSeq, sd.lastSent = now, h.Seq, h.SentNanos
	sd.offset = min(sd.offset, d)
	return time.Duration(d - sd.offset), back
}

// forget drops the senders silent for forgetAfter.
func (s *senders) forget(now time.Duration) {
	for name, sd := range s.byName {
		if now-sd.heard > forgetAfter {
			delete(s.byName, name)
		}
	}
}

// others counts the other nodes heard from within liveWindow.
func (s *senders) others(now time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := 0
	for _, sd := range s.byName {
		if now-sd.heard <= liveWindow {
			live++
		}
	}
	return live
}

// lastSeqOf is the Seq of the last batch applied from node, 0 if none.
func (s *senders) lastSeqOf(node string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sd := s.byName[node]; sd != nil {
		return sd.lastSeq
	}
	return 0
}

// applied is, for each node heard from, the Seq of the last batch
// applied from it.
func (s *senders) applied() []wire.Seq {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs := make([]wire.Seq, 0, len(s.byName))
	for name, sd := range s.byName {
		seqs = append(seqs, wire.Seq{Node: name, Seq: sd.lastSeq})
	}
	return seqs
}

// liveNames are the other nodes heard from within liveWindow.
func (s *senders) liveNames(now time.Duration) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name, sd := range s.byName {
		if now-sd.heard <= liveWindow {
			names = append(names, name)
		}
	}
	return names
}

// live counts the live nodes, this one included.
func (s *senders) live(now time.Duration) int { return 1 + s.others(now) }
