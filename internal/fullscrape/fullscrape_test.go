package fullscrape

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/swarm"
)

// fixed is a Source of given torrents.
type fixed map[bittorrent.InfoHash]bittorrent.ScrapeStats

func (f fixed) EachTorrent(fn func(*bittorrent.InfoHash, bittorrent.ScrapeStats)) {
	for h, st := range f {
		fn(&h, st)
	}
}

func torrents(n int) fixed {
	f := fixed{}
	for i := range n {
		f[sha1.Sum(fmt.Appendf(nil, "t%d", i))] = bittorrent.ScrapeStats{Complete: uint32(i), Incomplete: uint32(i * 3), Downloaded: uint32(i % 11)}
	}
	return f
}

// gunzip is the standard library's decompression, the oracle.
func gunzip(t testing.TB, b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A snapshot is the scrape reply of every torrent allowed, in hash order:
// exactly what httpproto's scrape encoder writes for them, gzip-compressed.
func TestBuildIsTheScrapeReplyOfEveryAllowedTorrent(t *testing.T) {
	src := torrents(5000)
	for i := range 6 { // alike in their first 8 bytes (or more): the order's tie-break
		var h bittorrent.InfoHash
		h[0], h[8+i] = 1, byte(9-i)
		src[h] = bittorrent.ScrapeStats{Complete: uint32(i)}
	}
	allowed := func(h *bittorrent.InfoHash) bool { return h[0]%3 != 0 }
	snap := Build(src, allowed)
	var hashes []bittorrent.InfoHash
	var stats []bittorrent.ScrapeStats
	for h := range src {
		if allowed(&h) {
			hashes = append(hashes, h)
		}
	}
	sortHashes(hashes)
	for _, h := range hashes {
		stats = append(stats, src[h])
	}
	keys := make([]httpproto.ScrapeKey, len(hashes))
	for i, h := range hashes {
		keys[i] = httpproto.KeyOf(h)
	}
	want := httpproto.AppendScrapeResponse(nil, keys, stats)
	plain := gunzip(t, snap.Gzip)
	if !bytes.Equal(plain, want) || snap.Plain != int64(len(want)) || snap.Torrents != len(hashes) {
		t.Fatalf("snapshot of %d torrents, %d bytes (says %d): not the scrape reply of %d (%d bytes)", snap.Torrents, len(plain), snap.Plain, len(hashes), len(want))
	}
	v, err := httpproto.Decode(plain)
	if err != nil || len(v.(map[string]any)["files"].(map[string]any)) != len(hashes) {
		t.Fatalf("decoded: %v", err)
	}
	empty := gunzip(t, Build(fixed{}, nil).Gzip)
	if string(empty) != "d5:filesdee" {
		t.Fatalf("empty: %q", empty)
	}
}

func sortHashes(h []bittorrent.InfoHash) {
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && bytes.Compare(h[j-1][:], h[j][:]) > 0; j-- {
			h[j-1], h[j] = h[j], h[j-1]
		}
	}
}

// Wait blocks for a build, and WritePlain writes what the standard
// library decompresses.
func TestWaitAndWritePlain(t *testing.T) {
	b := New(Options{Source: torrents(3000), Interval: time.Hour})
	s := b.Wait(time.Now())
	if s == nil || b.Wait(time.Now()) != s {
		t.Fatal("no snapshot, or a second one within the interval")
	}
	var out bytes.Buffer
	if err := s.WritePlain(&out); err != nil || !bytes.Equal(out.Bytes(), gunzip(t, s.Gzip)) {
		t.Fatalf("WritePlain: %v", err)
	}
}

// Plain's pieces make up what the standard library decompresses.
func TestPlainStreamsTheDecompressedReply(t *testing.T) {
	snap := Build(torrents(20000), nil)
	for range 2 { // the second takes pooled readers
		p, err := snap.NewPlain()
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for {
			piece, err := p.Next()
			if err == io.EOF {
				break
			}
			if err != nil || len(piece) > PieceSize {
				t.Fatal(err, len(piece))
			}
			got = append(got, piece...)
		}
		p.Close()
		if !bytes.Equal(got, gunzip(t, snap.Gzip)) {
			t.Fatal("pieces differ from the decompressed reply")
		}
	}
}

type waiter chan *Snapshot

func (w waiter) SnapshotReady(s *Snapshot) { w <- s }

// counting counts its builds.
type counting struct {
	fixed
	mu     sync.Mutex
	builds int
}

func (c *counting) EachTorrent(fn func(*bittorrent.InfoHash, bittorrent.ScrapeStats)) {
	c.mu.Lock()
	c.builds++
	c.mu.Unlock()
	c.fixed.EachTorrent(fn)
}

// Get builds on demand, one build for every caller waiting, and at most
// one per interval.
func TestBuilderBuildsAtMostOncePerInterval(t *testing.T) {
	src := &counting{fixed: torrents(10)}
	var recorded []*Snapshot
	b := New(Options{Source: src, Interval: time.Hour, Built: func(s *Snapshot) { recorded = append(recorded, s) }})
	w1, w2 := make(waiter, 1), make(waiter, 1)
	now := time.Now()
	if b.Get(now, w1) != nil {
		t.Fatal("a snapshot before any build")
	}
	b.Get(now, w2) // waits for the same build, or has its snapshot
	s1 := <-w1
	if s := b.Get(time.Now(), w1); s != s1 {
		t.Fatal("not the snapshot built within the interval")
	}
	if src.builds != 1 || len(recorded) != 1 || recorded[0] != s1 {
		t.Fatalf("%d builds, %d recorded", src.builds, len(recorded))
	}
	b.SetInterval(time.Millisecond)
	if s := b.Get(time.Now().Add(time.Second), w1); s != nil {
		t.Fatal("a snapshot older than the interval")
	}
	if s2 := <-w1; s2 == s1 || src.builds != 2 {
		t.Fatal("no new build after the interval")
	}
}

// BenchmarkBuild builds the full scrape of a store of
// TRAKX_FULLSCRAPE_TORRENTS torrents (default 100000; the figure
// is 2000000), one peer each, and reports: torrents built a second, the
// seconds a build takes, the snapshot's sizes (gzip, and plain), what a
// build allocates, and what the snapshot holds once built: Go heap in use
// and the process's resident memory, each measured with it and again
// after it is dropped and collected.
func BenchmarkBuild(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("TRAKX_FULLSCRAPE_TORRENTS")); err == nil && v > 0 {
		n = v
	}
	s := swarm.New(swarm.Config{AnnounceInterval: time.Minute, PeerTTL: time.Hour, NumWantDefault: 1, NumWantMax: 1, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	defer s.Close()
	var req bittorrent.AnnounceRequest
	var resp bittorrent.AnnounceResponse
	for i := range n {
		req = bittorrent.AnnounceRequest{InfoHash: sha1.Sum(fmt.Appendf(nil, "t%d", i)), Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Port: 1, Left: uint64(i % 2)}
		s.Announce(&req, &resp)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var snap *Snapshot
	for b.Loop() {
		snap = Build(s, nil)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "torrents/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "build-s")
	b.ReportMetric(float64(len(snap.Gzip)), "gzip-bytes")
	b.ReportMetric(float64(snap.Plain), "plain-bytes")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "alloc-bytes/build")
	heap, rss := held(func() { snap = nil })
	b.ReportMetric(float64(heap), "heap-held-bytes")
	b.ReportMetric(float64(rss), "rss-held-bytes")
	b.ReportMetric(0, "ns/op") // build-s says it
}

// held measures the Go heap in use, and the process's resident memory,
// before and after drop, each after a collection that returns what it
// can to the system, and returns the differences.
func held(drop func()) (heap, rss int64) {
	measure := func() (int64, int64) {
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapInuse), residentBytes()
	}
	heap0, rss0 := measure()
	drop()
	heap1, rss1 := measure()
	return heap0 - heap1, rss0 - rss1
}

// residentBytes is the process's resident memory (VmRSS), or 0 where
// /proc does not say.
func residentBytes() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}
