package database

import (
	"bufio"
	"encoding/binary"
	"hash/crc32"
	"io"
	"time"

	"github.com/trakx/trakx/internal/swarm"
)

// streamDecoder reads the body of a file, counting what is left of it so that no
// count in the file is trusted beyond the bytes that could back it.
type streamDecoder struct {
	r    *bufio.Reader
	left int64 // bytes of body (everything before the trailer) not yet read
	size int64 // bytes of body in all
}

func (d *streamDecoder) full(b []byte) error {
	if int64(len(b)) > d.left {
		return corrupt("truncated")
	}
	if _, err := io.ReadFull(d.r, b); err != nil {
		return truncated(err)
	}
	d.left -= int64(len(b))
	return nil
}

// offset is how far into the file the streamDecoder is.
func (d *streamDecoder) offset() int64 { return d.size - d.left }

func (d *streamDecoder) byte() (byte, error) {
	var b [1]byte
	err := d.full(b[:])
	return b[0], err
}

// uvarint reads a count that must fit 32 bits.
func (d *streamDecoder) uvarint() (uint32, error) {
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

// readStream decodes a file of the given size into store as it reads it,
// torrent by torrent, in a megabyte of memory: the way a load goes when
// the memory to read the file whole cannot be had. It is slower than
// read's (no shard is filled all at once, and no two at once) and loads
// the same.
func readStream(r io.Reader, size int64, store *swarm.Store, ttl time.Duration, now time.Time) (LoadStats, error) {
	var st LoadStats
	if size < headerSize+endSize+trailerSize {
		return st, corrupt("file of %d bytes is too short to be a database", size)
	}
	crc := crc32.New(castagnoli)
	d := &streamDecoder{
		r:    bufio.NewReaderSize(io.TeeReader(io.LimitReader(r, size-trailerSize), crc), int(min(size, 1<<20))),
		left: size - trailerSize,
		size: size - trailerSize,
	}
	l, err := d.header()
	if err != nil {
		return st, err
	}
	st.SavedAt = time.Unix(int64(l.format.savedAt), 0)
	l.store, l.now = store, uint32(now.Unix())
	l.cutoff = l.now - min(l.now, uint32(ttl/time.Second)) // a clock near 1970 (no RTC, no NTP yet) must not wrap
	if err := l.torrents(d, &st); err != nil {
		return st, err
	}
	var trailer [trailerSize]byte
	if _, err := io.ReadFull(r, trailer[:]); err != nil {
		return st, truncated(err)
	}
	if got, want := crc.Sum32(), binary.BigEndian.Uint32(trailer[:]); got != want {
		return st, corrupt("checksum mismatch (content %08x, trailer %08x)", got, want)
	}
	st.Torrents = store.Stats().Torrents
	return st, nil
}

// streamLoader is one load under way: where peers go and what the file's
// version makes a peer record.
type streamLoader struct {
	store          *swarm.Store
	format         format
	now, cutoff    uint32
	raw            []byte
	torrent        swarm.Torrent
	records, peers uint64
}

// header checks the file's header and sets up for its version.
func (d *streamDecoder) header() (*streamLoader, error) {
	var b [headerSize]byte
	if err := d.full(b[:]); err != nil {
		return nil, err
	}
	f, err := header(b[:])
	if err != nil {
		return nil, err
	}
	return &streamLoader{format: f}, nil
}

// torrents reads torrent records up to and including the end record.
func (l *streamLoader) torrents(d *streamDecoder, st *LoadStats) error {
	for {
		tag, err := d.byte()
		if err != nil {
			return err
		}
		switch tag {
		case tagEnd:
			return l.end(d)
		case tagTorrent:
			if err := l.torrentRecord(d, st); err != nil {
				return err
			}
		default:
			return corrupt("unknown record type %#x at byte %d", tag, d.offset()-1)
		}
	}
}

func (l *streamLoader) end(d *streamDecoder) error {
	var end [endSize - 1]byte
	if err := d.full(end[:]); err != nil {
		return err
	}
	if t, p := binary.BigEndian.Uint64(end[:8]), binary.BigEndian.Uint64(end[8:]); t != l.records || p != l.peers {
		return corrupt("end record counts %d torrents and %d peers, but the file holds %d and %d", t, p, l.records, l.peers)
	}
	if d.left != 0 {
		return corrupt("%d unexpected bytes after the end record", d.left)
	}
	return nil
}

// torrentRecord reads one torrent and hands its peers to the store a chunk
// at a time, each chunk of one kind.
func (l *streamLoader) torrentRecord(d *streamDecoder, st *LoadStats) error {
	t := &l.torrent
	if err := d.full(t.Hash[:]); err != nil {
		return err
	}
	c, err := l.format.readCounts(d.uvarint)
	if err != nil {
		return err
	}
	t.Downloaded = c.downloaded
	n := c.family(false) + c.family(true)
	if c.bytes(l.format.tail) > d.left-endSize {
		return corrupt("torrent %s claims %d peers, more than the %d bytes left hold", t.Hash, n, d.left)
	}
	l.records++
	l.peers += uint64(n)
	// Peers go to the store a chunk at a time: a whole torrent at once
	// when it fits, so that its swarm is sized once.
	t.Peers4, t.Peers6 = t.Peers4[:0], t.Peers6[:0]
	for g, group := range groups {
		for n := int64(c.peers[g]); n > 0; {
			k := min(n, peersPerChunk-int64(len(t.Peers4)+len(t.Peers6)))
			n -= k
			if err := l.chunk(d, k, group); err != nil {
				return err
			}
			if len(t.Peers4)+len(t.Peers6) == peersPerChunk {
				l.restore(st)
			}
		}
	}
	l.restore(st)
	return nil
}

// restore hands the peers read so far to the store.
func (l *streamLoader) restore(st *LoadStats) {
	t := &l.torrent
	if len(t.Peers4)+len(t.Peers6) == 0 {
		return
	}
	k, err := l.store.Restore(t, l.cutoff, l.now)
	st.tally(t, k, err)
}

// chunk reads n peers of one group, adding them to l.torrent.
func (l *streamLoader) chunk(d *streamDecoder, n int64, g group) error {
	addr := int64(g.addrSize())
	size := addr + int64(l.format.tail)
	if int64(cap(l.raw)) < n*size {
		l.raw = make([]byte, peersPerChunk*(16+l.format.tail)) // the most a chunk takes
	}
	raw := l.raw[:n*size]
	if err := d.full(raw); err != nil {
		return err
	}
	for i := range n {
		b := raw[i*size:]
		port, lastSeen := decodeTail(b[addr:], l.format.savedAt)
		g.appendPeer(&l.torrent, b[:addr], port, lastSeen)
	}
	return nil
}
