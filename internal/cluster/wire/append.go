package wire

import (
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

// Batch gathers the records a publisher will send in one message, and
// bounds their size so that it can send them before they pass a budget
// (NATS refuses a message over the server's max_payload, 1 MiB by
// default). It sends each torrent's records together, so that its hash
// is written once. Its buffers are reused from one batch to the next.
type Batch struct {
	Records []Record
	// order is each record's sort key: the first 5 bytes of its info hash
	// above its position. One slices.Sort of integers orders them at a
	// fraction of the cost of comparing whole records; distinct hashes
	// that share 5 bytes (a client can choose them) interleave and cost
	// a repeated hash, never a wrong record.
	order []uint64
	bound int // the body's size were no hash left out
}

// maxBatchRecords is the most records a Batch orders: positions take
// the sort key's low 24 bits. A batch of them would be 113 MiB at least.
const maxBatchRecords = 1 << 24

// Add adds a record to the batch. A batch holds 2^24 records at most;
// Add drops any more, which no byte budget NATS allows reaches.
func (b *Batch) Add(r Record) {
	if len(b.Records) >= maxBatchRecords {
		return
	}
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

// AppendTo appends the batch to dst, as AppendBatch does, its records
// ordered by info hash (by its first 5 bytes, stably: a peer's announces
// keep their order, as a started then a stopped must), and returns the
// extended slice.
func (b *Batch) AppendTo(dst []byte, h Header) []byte {
	b.order = b.order[:0]
	for i := range b.Records {
		ih := &b.Records[i].InfoHash
		prefix := uint64(ih[0])<<32 | uint64(ih[1])<<24 | uint64(ih[2])<<16 | uint64(ih[3])<<8 | uint64(ih[4])
		b.order = append(b.order, prefix<<24|uint64(i))
	}
	slices.Sort(b.order)
	h.Count = len(b.Records)
	dst = appendHeader(dst, &h)
	var prev *Record
	for _, key := range b.order {
		r := &b.Records[key&(maxBatchRecords-1)]
		dst = appendRecord(dst, r, prev != nil && r.InfoHash == prev.InfoHash)
		prev = r
	}
	return dst
}

// Reset empties the batch, keeping its buffers.
func (b *Batch) Reset() {
	b.Records = b.Records[:0]
	b.bound = 0
}
