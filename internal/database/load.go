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
	"time"

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

// tally counts a chunk of t's peers handed to the store, k of them kept
// (err: the store ran out of memory), and empties t for the next chunk.
func (st *LoadStats) tally(t *swarm.Torrent, k int, err error) {
	st.Peers += k
	if err != nil { // those not kept may have expired too: which, is unknown
		st.NoMemory += len(t.Peers4) + len(t.Peers6) - k
	} else {
		st.Expired += len(t.Peers4) + len(t.Peers6) - k
	}
	t.Peers4, t.Peers6 = t.Peers4[:0], t.Peers6[:0]
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
	tail    int  // bytes after a peer's address
	partial bool // torrents count partial seeds (version 3 on)
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
	case 2:
		f.tail = peerTailSize
	case formatVersion:
		f.tail, f.partial = peerTailSize, true
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
	fill.all(workers(size), &st)
	st.Torrents = store.Stats().Torrents
	return st, nil
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
