package wire

import (
	"encoding/binary"
	"errors"
)

// Seq is how far a snapshot went with one node's batches: the serving
// node had applied every batch of Node up to Seq, and none after, when it
// walked its store.
type Seq struct {
	Node string
	Seq  uint64
}

// ErrSeqs refuses a list of Seqs whole: its length, a node name or a
// Seq does not parse, or bytes follow the last entry.
var ErrSeqs = errors.New("cluster snapshot: malformed batch counters")

// minSeqSize is the fewest bytes an entry takes: a one-byte name.
const minSeqSize = 1 + 1 + 8

// AppendSeqs appends a list of Seqs: their number (uvarint), then each
// as its node's name (a length byte, then the name) and its Seq (uint64).
// Names must be ValidNode.
func AppendSeqs(dst []byte, seqs []Seq) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(seqs)))
	for _, s := range seqs {
		dst = append(dst, byte(len(s.Node)))
		dst = append(dst, s.Node...)
		dst = binary.BigEndian.AppendUint64(dst, s.Seq)
	}
	return dst
}

// ParseSeqs reads a list AppendSeqs wrote and calls fn with each entry,
// in order, its name's bytes valid only during the call; with an error,
// fn was not called: the list is checked whole first. It never panics.
func ParseSeqs(b []byte, fn func(node []byte, seq uint64)) error {
	if !walkSeqs(b, nil) {
		return ErrSeqs
	}
	walkSeqs(b, fn)
	return nil
}

// walkSeqs reads the list, calling fn with each entry when fn is not
// nil, and reports whether the whole of b was a well-formed list.
func walkSeqs(b []byte, fn func([]byte, uint64)) bool {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64((len(b)-k)/minSeqSize) {
		return false
	}
	b = b[k:]
	for range n {
		if len(b) < 1 || len(b) < 1+int(b[0])+8 {
			return false
		}
		node := b[1 : 1+int(b[0])]
		if !validNode(node) {
			return false
		}
		seq := binary.BigEndian.Uint64(b[1+len(node):])
		b = b[1+len(node)+8:]
		if fn != nil {
			fn(node, seq)
		}
	}
	return len(b) == 0
}

// SeqOf is a batch's header's Seq, read without parsing the rest; ok
// is false when the batch is not format 1 or too short to hold it.
func SeqOf(b []byte) (seq uint64, ok bool) {
	if len(b) < 2 || b[0] != Format || len(b) < 2+int(b[1])+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[2+int(b[1]):]), true
}
