package cluster

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/trakx/trakx/internal/cluster/wire"
)

// The snapshot protocol travels on subjects that name the node that
// publishes, as batches do, so that credentials allowed to publish only
// under <name>.<node>.> can neither ask nor answer for another node:
//
//	<name>.<R>.snapshot               R asks (queue group "snapshot")
//	<name>.<S>.snapshot.<R>.<attempt> S answers R: busy, chunks, the end
//	<name>.<R>.ack.<S>.<attempt>      R acknowledges each message of S
//
// The attempt, R's count of its requests from the time it started (in
// nanoseconds since 1970), keeps a late answer to an earlier request out
// of the next one, also across a restart of R under the same name.

// snapshotAsk is the subject node asks for a snapshot on.
func (n *Node) snapshotAsk(node string) string { return n.opts.Name + "." + node + ".snapshot" }

// snapshotStream is the subject responder answers requester's attempt on.
func (n *Node) snapshotStream(responder, requester, attempt string) string {
	return n.opts.Name + "." + responder + ".snapshot." + requester + "." + attempt
}

// snapshotAcks is the subject requester acknowledges responder's
// messages of an attempt on.
func (n *Node) snapshotAcks(requester, responder, attempt string) string {
	return n.opts.Name + "." + requester + ".ack." + responder + "." + attempt
}

// askerOf is the node that asks on subject <name>.<node>.snapshot.
func (n *Node) askerOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, n.opts.Name+".")
	if !ok {
		return "", false
	}
	node, ok := strings.CutSuffix(rest, ".snapshot")
	return node, ok && wire.ValidNode(node)
}

// responderOf is the node that answers on a stream subject.
func (n *Node) responderOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, n.opts.Name+".")
	if !ok {
		return "", false
	}
	node, _, ok := strings.Cut(rest, ".")
	return node, ok && wire.ValidNode(node)
}

// snapshotRequest is a request's payload: the attempt (uvarint), then
// how far the requester has come with each node's batches, its own
// included (wire.AppendSeqs), which the serving node reaches before it
// walks its store.
func snapshotRequest(attempt uint64, seqs []wire.Seq) []byte {
	return wire.AppendSeqs(binary.AppendUvarint(nil, attempt), seqs)
}

// parseSnapshotRequest reads a request's payload.
func parseSnapshotRequest(data []byte) (attempt string, seqs []wire.Seq, ok bool) {
	id, k := binary.Uvarint(data)
	if k <= 0 {
		return "", nil, false
	}
	err := wire.ParseSeqs(data[k:], func(node []byte, seq uint64) { seqs = append(seqs, wire.Seq{Node: string(node), Seq: seq}) })
	return strconv.FormatUint(id, 10), seqs, err == nil
}
