package database

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/offheap"
	"github.com/trakx/trakx/internal/swarm"
)

// ErrCorrupt is wrapped by every error about a file's content, as opposed
// to one about reaching it.
var ErrCorrupt = errors.New("corrupt database")

// corrupt reports a problem with the content of a file.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// LoadStats describe a finished load.
type LoadStats struct {
	SavedAt  time.Time
	Torrents int // torrents kept
	Peers    int // peers kept
	Expired  int // peers dropped as older than the peer TTL
	// NoMemory counts the peers given up because the store ran out of
	// memory; the load goes on and keeps what fits.
	NoMemory int
}

// peersPerChunk bounds the memory a load uses beyond the store it fills
// and the file's bytes: a swarm bigger than that goes to the store a
// chunk at a time.
const peersPerChunk = 4096

// Load reads the file at path into a new store with the given settings.
// Peers last seen longer than cfg.PeerTTL before now are dropped. A missing
// file gives an error satisfying errors.Is(err, os.ErrNotExist); a damaged
// one, an error wrapping ErrCorrupt. On any error the partly filled store is
// closed, not returned.
func Load(path string, cfg swarm.Config, now time.Time) (*swarm.Store, LoadStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, LoadStats{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, LoadStats{}, err
	}
	store := swarm.New(cfg)
	st, err := read(f, info.Size(), store, cfg.PeerTTL, now)
	if err != nil {
		store.Close()
		return nil, LoadStats{}, err
	}
	return store, st, nil
}

// A load reads the whole file into memory (off the Go heap, in huge pages
// where the kernel has them), then checks it and notes where each
// torrent's record is, by shard of the store, in one pass, while another
// goroutine checks the checksum. Only a file found whole fills the store:
// shard by shard, on every core, each shard's torrents one after another,
// so that the shard's memory, sized and mapped in once for exactly what
// it will hold, stays in the caches while it fills. Torrents taken in
// file order would each land in a shard the last did not, and a cache
// and TLB miss per torrent made most of a load's time.

// parallelFrom is the smallest file more than one goroutine fills the
// store from; a variable so that tests can have small files loaded the
// same way as big ones.
var parallelFrom int64 = 1 << 20

// workers is how many goroutines fill the store from a file of size
// bytes; a variable for tests.
var workers = func(size int64) int {
	if size < parallelFrom {
		return 1
	}
	return min(runtime.GOMAXPROCS(0), maxWorkers)
}

// forceStream has every load go the way it goes when memory is short
// (readStream), for tests.
var forceStream bool

// maxWorkers bounds the goroutines that fill a store.
const maxWorkers = 16

// format is what a file's header says.
type format struct {
	savedAt uint64
	tail    int // bytes after a peer's address
}

// header checks the file's header.
func header(b []byte) (format, error) {
	if string(b[:8]) != magic {
		return format{}, corrupt("not a trakx database (bad magic)")
	}
	f := format{savedAt: binary.BigEndian.Uint64(b[12:])}
	switch v := binary.BigEndian.Uint32(b[8:]); v {
	case 1:
		f.tail = peerTailSize + peerIDSize
	case formatVersion:
		f.tail = peerTailSize
	default:
		return format{}, corrupt("format version %d, but this trakx reads versions 1 to %d", v, formatVersion)
	}
	return f, nil
}

// read decodes a file of the given size into store.
func read(r io.ReaderAt, size int64, store *swarm.Store, ttl time.Duration, now time.Time) (LoadStats, error) {
	var st LoadStats
	if size < headerSize+endSize+trailerSize {
		return st, corrupt("file of %d bytes is too short to be a database", size)
	}
	if size > math.MaxInt {
		return st, corrupt("file of %d bytes is too big to be loaded here", size)
	}
	buf, err := offheap.Make[byte](int(size))
	if err != nil || forceStream {
		return readStream(io.NewSectionReader(r, 0, size), size, store, ttl, now)
	}
	defer offheap.Free(buf)
	hugePages(buf)
	if n, err := r.ReadAt(buf, 0); n < len(buf) {
		return st, truncated(cmp.Or(err, io.ErrUnexpectedEOF))
	}
	f, err := header(buf)
	if err != nil {
		return st, err
	}
	st.SavedAt = time.Unix(int64(f.savedAt), 0)
	body := buf[:len(buf)-trailerSize]
	sum := make(chan uint32, 1)
	go func() { sum <- crc32.Checksum(body, castagnoli) }()
	ix, err := index(body, f, store)
	got := <-sum
	if errors.Is(err, offheap.ErrNoMemory) {
		return readStream(io.NewSectionReader(r, 0, size), size, store, ttl, now)
	}
	if err != nil {
		return st, err
	}
	defer ix.free()
	if want := binary.BigEndian.Uint32(buf[len(body):]); got != want {
		return st, corrupt("checksum mismatch (content %08x, trailer %08x)", got, want)
	}

	unix := uint32(now.Unix())
	fill := filler{body: body, format: f, store: store, ix: ix, now: unix}
	fill.cutoff = unix - min(unix, uint32(ttl/time.Second)) // a clock near 1970 (no RTC, no NTP yet) must not wrap
	n := workers(size)
	stats := make([]LoadStats, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { fill.run(&stats[w]) })
	}
	wg.Wait()
	for _, s := range stats {
		st.Peers += s.Peers
		st.Expired += s.Expired
		st.NoMemory += s.NoMemory
	}
	st.Torrents = store.Stats().Torrents
	return st, nil
}

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
	const minTorrent = 1 + 20 + 5 // tag, hash, five one-byte counts
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
		var counts [5]uint32 // downloaded, IPv4 seeders, IPv4 leechers, IPv6 seeders, IPv6 leechers
		for i := range counts {
			if counts[i], err = d.uvarint(); err != nil {
				return nil, err
			}
		}
		n4, n6 := int64(counts[1])+int64(counts[2]), int64(counts[3])+int64(counts[4])
		bytes := n4*int64(4+f.tail) + n6*int64(16+f.tail)
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

// filler fills the store from a checked file, shard by shard.
type filler struct {
	body        []byte
	format      format
	store       *swarm.Store
	ix          *shardIndex
	cutoff, now uint32
	next        atomic.Int64  // the next shard to fill
	touched     atomic.Uint64 // keeps the records' first reads from being compiled away
}

// record is one torrent's record, as index checked it.
type record struct {
	hash       bittorrent.InfoHash
	downloaded uint32
	counts     [4]int // IPv4 seeders, IPv4 leechers, IPv6 seeders, IPv6 leechers
	peers      []byte
}

// recordAt decodes the record whose info hash is at off.
func (fl *filler) recordAt(off uint64, r *record) {
	b := fl.body[off:]
	r.hash = bittorrent.InfoHash(b[:20])
	b = b[20:]
	var counts [5]uint64
	for i := range counts {
		v, n := binary.Uvarint(b)
		counts[i], b = v, b[n:]
	}
	r.downloaded = uint32(counts[0])
	n4, n6 := int(counts[1]+counts[2]), int(counts[3]+counts[4])
	for i := range r.counts {
		r.counts[i] = int(counts[i+1])
	}
	r.peers = b[:n4*(4+fl.format.tail)+n6*(16+fl.format.tail)]
}

// run fills shards until none is left, counting into st.
func (fl *filler) run(st *LoadStats) {
	var t swarm.Torrent
	for {
		i := int(fl.next.Add(1) - 1)
		if i >= swarm.Shards {
			return
		}
		fl.shard(i, &t, st)
	}
}

// shard fills shard i: first it counts what the shard will hold, then
// restores its torrents into memory sized for that.
func (fl *filler) shard(i int, t *swarm.Torrent, st *LoadStats) {
	offs := fl.ix.at[fl.ix.from[i]:fl.ix.from[i+1]]
	if len(offs) == 0 {
		return
	}
	// The shard's records lie all over the file: a first look at each, in
	// a loop that waits on none, has the memory fetch them all at once
	// rather than one after another.
	var touch byte
	for _, off := range offs {
		touch |= fl.body[off]
	}
	fl.touched.Add(uint64(touch))
	var r record
	var size swarm.ShardSize
	for _, off := range offs {
		fl.recordAt(off, &r)
		n4 := fl.kept(r.peers, r.counts[0]+r.counts[1], 4)
		n6 := fl.kept(r.peers[(r.counts[0]+r.counts[1])*(4+fl.format.tail):], r.counts[2]+r.counts[3], 16)
		size.Add(n4, n6)
	}
	l := fl.store.LoadShard(i, size, fl.cutoff, fl.now)
	defer l.Done()
	for _, off := range offs {
		fl.recordAt(off, &r)
		fl.torrent(l, &r, t, st)
	}
}

// kept counts the peers of n records of addr-byte addresses at b that a
// load keeps, repeats aside.
func (fl *filler) kept(b []byte, n, addr int) (kept int) {
	size := addr + fl.format.tail
	for i := range n {
		port, lastSeen := decodeTail(b[i*size+addr:], fl.format.savedAt)
		if swarm.Keeps(lastSeen, port, fl.cutoff, fl.now) {
			kept++
		}
	}
	return kept
}

// torrent restores one torrent, a chunk at a time, each chunk of one kind:
// a whole torrent at once when it fits, so that its swarm is sized once.
func (fl *filler) torrent(l *swarm.ShardLoad, r *record, t *swarm.Torrent, st *LoadStats) {
	t.Hash, t.Downloaded = r.hash, r.downloaded
	t.Peers4, t.Peers6 = t.Peers4[:0], t.Peers6[:0]
	b := r.peers
	for g, group := range [4]struct {
		ipv6   bool
		seeder bool
	}{{false, true}, {false, false}, {true, true}, {true, false}} {
		addr := 4
		if group.ipv6 {
			addr = 16
		}
		size := addr + fl.format.tail
		for n := r.counts[g]; n > 0; {
			c := min(n, peersPerChunk-len(t.Peers4)-len(t.Peers6))
			n -= c
			for i := range c {
				p := b[i*size:]
				port, lastSeen := decodeTail(p[addr:], fl.format.savedAt)
				if group.ipv6 {
					t.Peers6 = append(t.Peers6, swarm.SnapshotPeer6{IP: [16]byte(p[:16]), Port: port, Seeder: group.seeder, LastSeen: lastSeen})
				} else {
					t.Peers4 = append(t.Peers4, swarm.SnapshotPeer4{IP: [4]byte(p[:4]), Port: port, Seeder: group.seeder, LastSeen: lastSeen})
				}
			}
			b = b[c*size:]
			if len(t.Peers4)+len(t.Peers6) == peersPerChunk {
				restore(l, t, st)
			}
		}
	}
	restore(l, t, st)
}

// restore hands the peers decoded so far to the store.
func restore(l *swarm.ShardLoad, t *swarm.Torrent, st *LoadStats) {
	if len(t.Peers4)+len(t.Peers6) == 0 {
		return
	}
	k, err := l.Add(t)
	st.Peers += k
	if err != nil { // those not kept may have expired too: which, is unknown
		st.NoMemory += len(t.Peers4) + len(t.Peers6) - k
	} else {
		st.Expired += len(t.Peers4) + len(t.Peers6) - k
	}
	t.Peers4, t.Peers6 = t.Peers4[:0], t.Peers6[:0]
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt("truncated")
	}
	return err
}

// decodeTail reads the port and age that follow a peer's address.
func decodeTail(b []byte, savedAt uint64) (port uint16, lastSeen uint32) {
	age := uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
	return binary.BigEndian.Uint16(b), uint32(max(savedAt, age) - age)
}
