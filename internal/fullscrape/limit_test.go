package fullscrape

import (
	"bytes"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// No more than MaxPlain replies are read decompressed at once, over all
// of a builder's snapshots: the next NewPlain says ErrBusy, and WritePlain
// writes nothing; a reader closed frees its slot. Gzip replies take none.
func TestPlainReadersAreLimited(t *testing.T) {
	b := New(Options{Source: torrents(3000), Interval: time.Hour, MaxPlain: 2})
	s := b.Wait(time.Now())
	p1, err1 := s.NewPlain()
	p2, err2 := s.NewPlain()
	if err1 != nil || err2 != nil || b.Plain() != 2 {
		t.Fatalf("two readers of two slots: %v, %v, %d in use", err1, err2, b.Plain())
	}
	if p, err := s.NewPlain(); err != ErrBusy || p != nil {
		t.Fatalf("a third reader: %v, want ErrBusy", err)
	}
	var out bytes.Buffer
	if err := s.WritePlain(&out); err != ErrBusy || out.Len() != 0 {
		t.Fatalf("WritePlain with no slot free: %v, %d bytes written", err, out.Len())
	}
	p1.Close()
	p1.Close() // a second Close frees no second slot
	if b.Plain() != 1 {
		t.Fatalf("%d in use after one of two closed", b.Plain())
	}
	if err := s.WritePlain(&out); err != nil || !bytes.Equal(out.Bytes(), gunzip(t, s.Gzip)) || b.Plain() != 1 {
		t.Fatalf("WritePlain with a slot free: %v, %d in use after", err, b.Plain())
	}
	p2.Close()
	alone := Build(torrents(10), nil) // no builder: no limit
	for range 3 * DefaultMaxPlain {
		if _, err := alone.NewPlain(); err != nil {
			t.Fatal(err)
		}
	}
	if d := New(Options{Source: fixed{}}); cap(d.slots) != DefaultMaxPlain {
		t.Fatalf("default limit %d", cap(d.slots))
	}
}

// gated is a Source whose EachTorrent waits for its gate to open.
type gated struct {
	fixed
	entered chan struct{}
	gate    chan struct{}
}

func (g gated) EachTorrent(fn func(*bittorrent.InfoHash, bittorrent.ScrapeStats)) {
	g.entered <- struct{}{}
	<-g.gate
	g.fixed.EachTorrent(fn)
}

// Close drops the builder's snapshot, and keeps out the one a build under
// way when it came ends with: that goes to its waiters, not to Last nor
// to Built; so does one built after for a request admitted before.
func TestCloseDropsTheSnapshot(t *testing.T) {
	src := gated{fixed: torrents(100), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	var recorded atomic.Int32
	b := New(Options{Source: src, Interval: time.Hour, Built: func(*Snapshot) { recorded.Add(1) }})
	close(src.gate)
	if b.Wait(time.Now()) == nil || b.Last() == nil || recorded.Load() != 1 {
		t.Fatal("no snapshot built")
	}
	<-src.entered
	b.Close()
	if b.Last() != nil {
		t.Fatal("a snapshot kept after Close")
	}
	src.gate = make(chan struct{})
	b.opts.Source = src // builds from here wait for the gate
	w := make(waiter, 1)
	if b.Get(time.Now(), w) != nil {
		t.Fatal("a snapshot handed out after Close without a build")
	}
	<-src.entered // the build is under way
	b.Close()
	close(src.gate)
	if s := <-w; s == nil || s.Torrents != 100 {
		t.Fatal("the waiter did not get the build's snapshot")
	}
	if b.Last() != nil || recorded.Load() != 1 {
		t.Fatalf("after a build that ended closed: Last %v, %d recorded", b.Last() != nil, recorded.Load())
	}
}

// BenchmarkPlainMemory reports what one reply read decompressed allocates
// when no pooled buffer is there to take (the pools are emptied by two
// collections before each): the memory a plain full scrape holds while it
// is written, which Options.MaxPlain multiplies.
func BenchmarkPlainMemory(b *testing.B) {
	snap := Build(torrents(20000), nil)
	var before, after runtime.MemStats
	var total uint64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.GC() // a pool's victims go at the second
		runtime.ReadMemStats(&before)
		b.StartTimer()
		p, err := snap.NewPlain()
		if err != nil {
			b.Fatal(err)
		}
		p.Next()
		b.StopTimer()
		runtime.ReadMemStats(&after)
		total += after.TotalAlloc - before.TotalAlloc
		p.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/float64(b.N), "bytes/plain")
	b.ReportMetric(0, "ns/op") // the timing is of nothing worth reading
}
