package wire

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Count is a torrent's completion count as a snapshot carries it: a
// joining node raises its own count to at least this.
type Count struct {
	InfoHash   bittorrent.InfoHash
	Downloaded uint32
}

// ErrCounts refuses a list of counts whole: its length, an entry or a
// count does not parse, or bytes follow the last entry.
var ErrCounts = errors.New("cluster snapshot: malformed completion counts")

// minCountSize is the fewest bytes an entry takes: a hash and a
// one-byte varint.
const minCountSize = hashSize + 1

// MaxCountSize is the most bytes an entry takes: a hash and a uint32 as
// a varint.
const MaxCountSize = hashSize + binary.MaxVarintLen32

// AppendCounts appends a list of counts: their number (uvarint), then
// each as its info hash (20 bytes) and its count (uvarint, < 2^32).
func AppendCounts(dst []byte, counts []Count) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(counts)))
	for i := range counts {
		dst = append(dst, counts[i].InfoHash[:]...)
		dst = binary.AppendUvarint(dst, uint64(counts[i].Downloaded))
	}
	return dst
}

// ParseCounts reads a list AppendCounts wrote and calls fn with each
// entry, in order; with an error, fn was not called: the list is checked
// whole first. It never panics and allocates nothing.
func ParseCounts(b []byte, fn func(Count)) error {
	if !walkCounts(b, nil) {
		return ErrCounts
	}
	walkCounts(b, fn)
	return nil
}

// walkCounts reads the list, calling fn with each entry when fn is not
// nil, and reports whether the whole of b was a well-formed list.
func walkCounts(b []byte, fn func(Count)) bool {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64((len(b)-k)/minCountSize) {
		return false
	}
	b = b[k:]
	for range n {
		if len(b) < minCountSize {
			return false
		}
		var c Count
		copy(c.InfoHash[:], b[:hashSize])
		v, k := binary.Uvarint(b[hashSize:])
		if k <= 0 || v > math.MaxUint32 {
			return false
		}
		b = b[hashSize+k:]
		if fn != nil {
			c.Downloaded = uint32(v)
			fn(c)
		}
	}
	return len(b) == 0
}
