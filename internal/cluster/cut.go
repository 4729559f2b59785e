package cluster

import (
	"errors"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
)

// errNoCut: the flusher did not place the cut's barrier in time.
var errNoCut = errors.New("the flusher did not answer")

// cut takes, as of one instant, the store's completion counts and how far
// they hold each node's batches, so that the requester applies the
// batches it held meanwhile counted exactly when the counts lack them:
// batches from the other nodes are held (the receiver buffers them),
// this node's completions wait for the counts to be copied (announcing),
// and this node's part of the instant is a barrier in its outbox: every
// completion counted went in a batch up to the barrier's Seq, every later
// one in a batch after it. Completions wait for a copy of the counts
// only, never on NATS or the flusher.
func (n *Node) cut() ([]wire.Count, []wire.Seq, error) {
	n.rx.startBuffering()
	n.announcing.Lock()
	own := n.out.barrier()
	seqs := n.senders.applied()
	counts := n.counts()
	n.announcing.Unlock()
	n.rx.stopBuffering()
	select {
	case seq := <-own:
		return counts, append(seqs, wire.Seq{Node: n.opts.Node, Seq: seq}), nil
	case <-time.After(flushWait):
		return nil, nil, errNoCut
	case <-n.done:
		return nil, nil, errNoCut
	}
}

// counts copies every torrent's non-zero completion count.
func (n *Node) counts() []wire.Count {
	if n.opts.Counts == nil || n.opts.Downloaded == nil {
		return nil
	}
	var list []wire.Count
	n.opts.Counts(func(h *bittorrent.InfoHash, downloaded uint32) {
		if downloaded > 0 {
			list = append(list, wire.Count{InfoHash: *h, Downloaded: downloaded})
		}
	})
	return list
}
