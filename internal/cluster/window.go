package cluster

// A snapshot's walk follows its cut: the serving node goes on applying
// batches while it walks, so a peer can reach the requester as a seeder
// from the walk while the completion that made it one is in a batch after
// the cut, which the snapshot's counts do not hold. Applied by the
// store's rule (a completion counts when it makes a peer a seeder), that
// batch would count nothing. So the end of the walk is sent too (each
// node's last batch the serving node had applied when it finished), and
// the requester counts every completed record (one its publisher
// counted: see publish) in the batches between the cut and the end of
// the walk, as it applies each for the first time, held or not; before
// the cut, none; after the walk, by the store's rule, which counts a
// peer's completion once however many nodes it reached.

// span is one node's batches between a snapshot's cut and its walk's end.
type span struct{ after, upTo uint64 }

// windows are the spans of the last snapshot applied, by node; a node's
// is forgotten once a batch at or past its end is applied, or its Seq
// goes back (it restarted). The receiver's lock guards them.
type windows map[string]span

// newWindows makes the spans from a snapshot's cut and its walk's end.
func newWindows(cut, walked map[string]uint64) windows {
	w := windows{}
	for node, upTo := range walked {
		if after := cut[node]; upTo > after {
			w[node] = span{after: after, upTo: upTo}
		}
	}
	return w
}

// covers reports whether batch seq of node is in its span, and forgets
// the span once seq reaches its end or goes back before its start.
func (w windows) covers(node string, seq uint64) bool {
	s, ok := w[node]
	if !ok {
		return false
	}
	if seq >= s.upTo || seq < s.after {
		delete(w, node)
	}
	return seq > s.after && seq <= s.upTo
}
