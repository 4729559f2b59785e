package fullscrape

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/binary"
	"slices"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/swarm"
)

// Level is the gzip level of snapshots: the fastest. A full scrape is
// mostly info hashes, which no level compresses; the fastest level takes
// the repeated keys out as well as any, in a fraction of the time.
const Level = gzip.BestSpeed

// entry is one torrent as a build copies it: its hash and counts.
type entry struct {
	hash  bittorrent.InfoHash
	stats bittorrent.ScrapeStats
}

// byHash orders entries by info hash, bytewise: as big-endian numbers,
// the first 8 bytes deciding almost always.
func byHash(a, b entry) int {
	if x, y := binary.BigEndian.Uint64(a.hash[:8]), binary.BigEndian.Uint64(b.hash[:8]); x != y {
		return cmp.Compare(x, y)
	}
	return bytes.Compare(a.hash[8:], b.hash[8:])
}

// counter is a Source that can say how many torrents it has, as the store
// can: the copy of them is then allocated once.
type counter interface {
	Stats() swarm.Stats
}

// chunk is how much of the reply is encoded before it is compressed.
const chunk = 64 << 10

// Build builds a snapshot of src's torrents that allowed allows (nil: all),
// at once, on the calling goroutine.
func Build(src Source, allowed func(*bittorrent.InfoHash) bool) *Snapshot {
	start := time.Now()
	var entries []entry
	if c, ok := src.(counter); ok { // allocated once, not grown a quarter at a time
		n := c.Stats().Torrents
		entries = make([]entry, 0, n+n/32+64)
	}
	src.EachTorrent(func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats) {
		if allowed == nil || allowed(h) {
			entries = append(entries, entry{*h, st})
		}
	})
	slices.SortFunc(entries, byHash)
	var out bytes.Buffer
	// About 25 bytes a torrent compressed: grown once rather than doubled.
	out.Grow(64 + 26*len(entries))
	zw, _ := gzip.NewWriterLevel(&out, Level) // Level is valid
	buf := make([]byte, 0, chunk+256)
	buf = append(buf, "d5:filesd"...)
	var plain int64
	for i := range entries {
		buf = httpproto.AppendScrapeEntry(buf, entries[i].hash[:], entries[i].stats)
		if len(buf) >= chunk {
			zw.Write(buf) // a bytes.Buffer takes everything
			plain += int64(len(buf))
			buf = buf[:0]
		}
	}
	buf = append(buf, "ee"...)
	zw.Write(buf)
	zw.Close()
	plain += int64(len(buf))
	gz := out.Bytes()
	if cap(gz)-len(gz) > len(gz)/32 { // held until the next build: not a byte more than it needs
		gz = bytes.Clone(gz)
	}
	return &Snapshot{Gzip: gz, Plain: plain, Torrents: len(entries), Built: start, Took: time.Since(start)}
}
