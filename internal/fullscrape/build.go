package fullscrape

import (
	"bytes"
	"compress/gzip"
	"slices"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
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

// chunk is how much of the reply is encoded before it is compressed.
const chunk = 64 << 10

// Build builds a snapshot of src's torrents that allowed allows (nil: all),
// at once, on the calling goroutine.
func Build(src Source, allowed func(*bittorrent.InfoHash) bool) *Snapshot {
	start := time.Now()
	var entries []entry
	src.EachTorrent(func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats) {
		if allowed == nil || allowed(h) {
			entries = append(entries, entry{*h, st})
		}
	})
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.hash[:], b.hash[:]) })
	var out bytes.Buffer
	// About 25 bytes a torrent compressed: grown once rather than doubled.
	out.Grow(64 + 26*len(entries))
	zw, _ := gzip.NewWriterLevel(&out, Level) // Level is valid
	buf := make([]byte, 0, chunk+256)
	buf = append(buf, "d5:filesd"...)
	var plain int64
	for i := range entries {
		buf = httpproto.AppendScrapeEntry(buf, &entries[i].hash, entries[i].stats)
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
	return &Snapshot{Gzip: out.Bytes(), Plain: plain, Torrents: len(entries), Built: start, Took: time.Since(start)}
}
