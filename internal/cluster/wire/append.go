package wire

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// Format is the format byte this package writes and the only one it reads.
const Format = 1

// MaxNodeLen is the longest node name, in bytes.
const MaxNodeLen = 64

// MaxHeaderSize is the most bytes a header takes: format, node length,
// the longest node, seq, sent nanos and the longest count.
const MaxHeaderSize = 1 + 1 + MaxNodeLen + 8 + 8 + binary.MaxVarintLen64

// Header is a batch's header.
type Header struct {
	Node string // the publishing node, as its subject names it
	// Seq counts the publisher's batches on one NATS connection, one more
	// each time, so that a receiver sees a lost or reordered batch.
	Seq uint64
	// SentNanos is the publisher's monotonic clock when it sent the batch,
	// in nanoseconds since it started (never negative): a receiver
	// estimates lag from its deltas between batches, not from a wall clock.
	SentNanos int64
	// Count is the records that follow. AppendBatch writes the number of
	// records it is given, whatever Count says.
	Count int
}

// AppendBatch appends a batch of the header and records to dst, in the
// records' order, leaving out each info hash equal to the one before it,
// and returns the extended slice. It allocates nothing when dst has room.
// The caller gives a valid node name and records (ValidNode,
// Record.Valid): what it gives is written as given, and receivers refuse
// it (a bad node or negative SentNanos: the whole batch; a bad record:
// that record).
func AppendBatch(dst []byte, h Header, recs []Record) []byte {
	h.Count = len(recs)
	dst = appendHeader(dst, &h)
	for i := range recs {
		same := i > 0 && recs[i].InfoHash == recs[i-1].InfoHash
		dst = appendRecord(dst, &recs[i], same)
	}
	return dst
}

// appendHeader appends the header h, its Count included.
func appendHeader(dst []byte, h *Header) []byte {
	node := h.Node[:min(len(h.Node), 255)] // longer is refused anyway
	dst = append(dst, Format, byte(len(node)))
	dst = append(dst, node...)
	dst = binary.BigEndian.AppendUint64(dst, h.Seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.SentNanos))
	return binary.AppendUvarint(dst, uint64(h.Count))
}

// appendRecord appends one record; sameHash leaves its info hash out.
func appendRecord(dst []byte, r *Record, sameHash bool) []byte {
	dst = append(dst, r.tag(sameHash))
	if !sameHash {
		dst = append(dst, r.InfoHash[:]...)
	}
	switch {
	case r.Addr.Is6():
		a := r.Addr.As16()
		dst = append(dst, a[:]...)
	case r.Addr.Is4():
		a := r.Addr.As4()
		dst = append(dst, a[:]...)
	default: // the zero Addr, as 0.0.0.0, which receivers refuse
		dst = append(dst, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(dst, r.Port)
}

// SortRecords sorts records by info hash, stably, so that AppendBatch
// writes each torrent's hash once and a peer's announces keep their order
// (a started then a stopped must arrive as such).
func SortRecords(recs []Record) {
	slices.SortStableFunc(recs, func(a, b Record) int {
		return bytes.Compare(a.InfoHash[:], b.InfoHash[:])
	})
}

// Batch gathers the records a publisher will send in one message, and
// bounds their size so that it can send them before they pass a budget
// (NATS refuses a message over the server's max_payload, 1 MiB by
// default). Its buffers are reused from one batch to the next.
type Batch struct {
	Records []Record
	bound   int // the body's size were no hash left out
}

// Add adds a record to the batch.
func (b *Batch) Add(r Record) {
	b.Records = append(b.Records, r)
	b.bound += recordSize(r.tag(false))
}

// Len is the number of records gathered.
func (b *Batch) Len() int { return len(b.Records) }

// Bound is the most bytes the batch can take once appended, header
// included. Adding a record raises it by MaxRecordSize at most, so a
// publisher that sends when Bound()+MaxRecordSize passes its budget never
// sends a batch over it.
func (b *Batch) Bound() int { return MaxHeaderSize + b.bound }

// AppendTo sorts the records by info hash (SortRecords) and appends the
// batch to dst, as AppendBatch does.
func (b *Batch) AppendTo(dst []byte, h Header) []byte {
	SortRecords(b.Records)
	return AppendBatch(dst, h, b.Records)
}

// Reset empties the batch, keeping its buffer.
func (b *Batch) Reset() {
	b.Records = b.Records[:0]
	b.bound = 0
}
