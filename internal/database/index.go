package database

import (
	"encoding/binary"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/offheap"
	"github.com/trakx/trakx/internal/swarm"
)

// shardIndex is where each torrent's record is in a file, by shard: the
// records of shard i start at the offsets at[from[i]:from[i+1]], in file
// order, each offset that of the record's info hash in the body.
type shardIndex struct {
	at   []uint64 // off the Go heap
	from [swarm.Shards + 1]int
}

func (ix *shardIndex) free() { offheap.Free(ix.at) }

// shardShift puts a record's shard above its offset while the index is
// made; offsets are below 2^54.
const shardShift = 54

// index checks the records of a file's body, header aside, up to and
// including the end record, and notes where each torrent's is.
func index(body []byte, f format, store *swarm.Store) (*shardIndex, error) {
	const minTorrent = 1 + 20 + 5 // tag, hash, five one-byte counts (seven from version 3)
	found, err := offheap.Make[uint64](len(body)/minTorrent + 1)
	if err != nil {
		return nil, err
	}
	defer offheap.Free(found)
	hugePages(found)
	ix := &shardIndex{}
	d := cursor{b: body, pos: headerSize}
	var records, peers uint64
	for {
		tag, err := d.byte()
		if err != nil {
			return nil, err
		}
		switch tag {
		case tagTorrent:
		case tagEnd:
			var end [endSize - 1]byte
			if err := d.full(end[:]); err != nil {
				return nil, err
			}
			if t, p := binary.BigEndian.Uint64(end[:8]), binary.BigEndian.Uint64(end[8:]); t != records || p != peers {
				return nil, corrupt("end record counts %d torrents and %d peers, but the file holds %d and %d", t, p, records, peers)
			}
			if left := d.left(); left != 0 {
				return nil, corrupt("%d unexpected bytes after the end record", left)
			}
			return ix, ix.sort(found[:records])
		default:
			return nil, corrupt("unknown record type %#x at byte %d", tag, d.pos-1)
		}
		at := d.pos
		var hash bittorrent.InfoHash
		if err := d.full(hash[:]); err != nil {
			return nil, err
		}
		c, err := f.readCounts(d.uvarint)
		if err != nil {
			return nil, err
		}
		n4, n6 := c.family(false), c.family(true)
		bytes := c.bytes(f.tail)
		if left := d.left(); bytes > left-endSize {
			return nil, corrupt("torrent %s claims %d peers, more than the %d bytes left hold", hash, n4+n6, left)
		}
		d.pos += int(bytes)
		shard := store.ShardOf(&hash)
		found[records] = uint64(shard)<<shardShift | uint64(at)
		ix.from[shard+1]++
		records++
		peers += uint64(n4 + n6)
	}
}

// sort lays out the offsets found by shard.
func (ix *shardIndex) sort(found []uint64) error {
	var err error
	if ix.at, err = offheap.Make[uint64](len(found)); err != nil {
		return err
	}
	hugePages(ix.at)
	for i := range swarm.Shards {
		ix.from[i+1] += ix.from[i]
	}
	next := ix.from
	for _, e := range found {
		shard := e >> shardShift
		ix.at[next[shard]] = e & (1<<shardShift - 1)
		next[shard]++
	}
	return nil
}

// cursor reads a file's body, checking that what it reads is there.
type cursor struct {
	b   []byte
	pos int
}

func (d *cursor) left() int64 { return int64(len(d.b) - d.pos) }

func (d *cursor) full(b []byte) error {
	if len(b) > len(d.b)-d.pos {
		return corrupt("truncated")
	}
	d.pos += copy(b, d.b[d.pos:])
	return nil
}

func (d *cursor) byte() (byte, error) {
	if d.pos >= len(d.b) {
		return 0, corrupt("truncated")
	}
	d.pos++
	return d.b[d.pos-1], nil
}

// uvarint reads a count that must fit 32 bits.
func (d *cursor) uvarint() (uint32, error) {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c, err := d.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if v > 1<<32-1 {
				break
			}
			return uint32(v), nil
		}
	}
	return 0, corrupt("a count is out of range")
}
