// Package wire is the byte format in which trakx nodes of a cluster (issue
// 26) tell each other the announces they accepted: a batch of records, one
// per announce, published on NATS under <name>.<node>.… . It is a pure
// codec: no sockets, no clocks, no store. The publisher gathers records
// (Batch, or its own slice and AppendBatch), the receiver reads them with
// ParseBatch and applies each to its own store (Record.Request).
//
// # Contract
//
//   - A record is exactly what a receiver needs to apply an announce: the
//     info hash, the peer's address and port, its event and whether it
//     seeds (left == 0). Peer ids, byte counts and numwant do not travel:
//     trakx does not store them. A partial seed (BEP 21) travels as event
//     paused and not a seeder, as the store keeps it; a completion travels
//     as event completed, so that only the node that accepted it counts it
//     and the receivers apply it without counting it again.
//   - The header names the publishing node (a NATS subject token, which
//     the receiver checks against the subject the batch came on), the
//     publisher's batch counter (Seq, one more for each batch of a
//     connection) and its monotonic clock (SentNanos, nanoseconds since it
//     started), from which the receiver estimates apply lag by deltas
//     between batches, never by comparing clocks of two machines.
//   - ParseBatch never panics and never trusts a length it has not
//     checked. A malformed header refuses the whole batch (an error, no
//     record yielded). A malformed record is counted and skipped: every
//     record's size follows from its first byte alone, so a bad record
//     never desynchronises the ones after it. Whenever the header is
//     valid, Stats.Valid + Stats.Malformed equals the header's Count.
//   - Appending and parsing allocate nothing (asserted by the tests).
//
// # Layout, format 1
//
// Fixed-size integers are big-endian; counts are unsigned varints
// (encoding/binary's Uvarint), as in the swarm file (docs/database.md).
//
//	batch   format byte 0x01 | node length (1 byte, 1..64) | node (ASCII [A-Za-z0-9_-])
//	        | seq uint64 | sent nanos uint64 (< 2^63) | record count uvarint | records
//	record  tag (1) | info hash (20), absent when the tag says "same hash"
//	        | address (4 for IPv4, 16 for IPv6) | port uint16
//	tag     bit 7: IPv6 | bit 6: same info hash as the record before it
//	        | bits 5-4: reserved, 0 | bit 3: seeder (left == 0)
//	        | bits 2-0: event, bittorrent.Event's values (0 none, 1 completed,
//	          2 started, 3 stopped, 4 paused)
//
// So an IPv4 record is 27 bytes, 7 when it shares the info hash of the
// record before it; an IPv6 one 39 or 19. AppendBatch leaves out every
// info hash equal to the one before it; Batch orders its records by info
// hash first (by the hash's first 5 bytes, stably: one peer's announces
// keep their order), so that a popular torrent's announces share one
// hash. Why (BenchmarkBytesPerRecord, IPv4, NATS's MSG framing counted):
// batches of 1000 announces over 1M torrents drawn Zipf(1.1) take 17.6
// bytes an announce ordered, 26.6 in arrival order, 27.1 when every
// torrent is different; the ordering costs about 40 ns an announce.
//
// A record is malformed when its tag has a reserved bit set or an event
// above 4, says "same hash" with no record before it, its port is 0, or
// its address is unspecified, loopback, multicast, IPv4 broadcast or an
// IPv4-mapped IPv6 address (announces carry those unmapped). A "same
// hash" record takes the hash of the record before it even when that one
// was malformed: the hash's bytes were there, whatever else was wrong.
//
// A header is malformed when its format byte is not 1 (FormatError: a
// later format is refused by name, not misread), its node is not a
// subject token, its sent nanos are 2^63 or more, or its count claims
// more records than the bytes after it could hold (7 bytes each at
// least). When the records end before the count does, the missing ones
// are counted malformed and ParseBatch says ErrTruncated; bytes left
// after the last record make it say ErrTrailingBytes. Either way the
// records it yielded were valid and are to be applied.
//
// # Completion counts
//
// A snapshot (package cluster) carries each torrent's completion count
// beside its peers, as lists AppendCounts writes and ParseCounts reads:
//
//	counts  count uvarint | entries
//	entry   info hash (20) | downloaded uvarint (< 2^32)
//
// A list is refused whole (ErrCounts, nothing yielded) when its count
// claims more entries than its bytes could hold (21 each at least), an
// entry is cut short or its count is 2^32 or more, or bytes follow the
// last entry.
//
// # Batch counters
//
// A snapshot's end names, for each node, the Seq of its last batch the
// serving node had applied when it walked its store (AppendSeqs,
// ParseSeqs):
//
//	seqs   count uvarint | entries
//	entry  node length (1, 1..64) | node (a subject token) | seq uint64
//
// A list is refused whole (ErrSeqs) as a list of counts is. SeqOf reads
// a batch's Seq from its header alone.
package wire
