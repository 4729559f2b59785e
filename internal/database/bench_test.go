package database

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/swarm"
)

// benchSizes are the store sizes the save and load benchmarks run at, with
// ten peers per torrent on average.
var benchSizes = []int{1_000_000, 10_000_000}

func filledStore(peers int) *swarm.Store {
	s := swarm.New(testConfig)
	fill(s, peers/10, 19, 0)
	return s
}

func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkSave reports the time to save a store, the file's size and the
// memory the save allocates beyond the store.
func BenchmarkSave(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("peers=%dM", n/1_000_000), func(b *testing.B) {
			s := filledStore(n)
			defer s.Close()
			path := filepath.Join(b.TempDir(), "peers.db")
			var st SaveStats
			before := allocated()
			b.ResetTimer()
			for b.Loop() {
				var err error
				if st, err = Save(path, s, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(allocated()-before)/float64(b.N)/1e6, "MB-alloc/op")
			b.ReportMetric(float64(st.Bytes)/1e6, "file-MB")
			b.ReportMetric(float64(st.Bytes)/float64(st.Peers), "file-bytes/peer")
		})
	}
}

// BenchmarkLoad reports the time to load a saved store, the Go heap the
// load allocates (the store itself lives off the heap) and what it leaves
// on the Go heap.
func BenchmarkLoad(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("peers=%dM", n/1_000_000), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "peers.db")
			s := filledStore(n)
			if _, err := Save(path, s, time.Now()); err != nil {
				b.Fatal(err)
			}
			s.Close()
			runtime.GC()
			base := heapInUse()
			before := allocated()
			var loaded *swarm.Store
			b.ResetTimer()
			for b.Loop() {
				var err error
				if loaded != nil {
					loaded.Close()
				}
				if loaded, _, err = Load(path, testConfig, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(heapInUse()-base)/1e6, "go-heap-MB")
			b.ReportMetric(float64(allocated()-before)/float64(b.N)/1e6, "MB-alloc/op")
			loaded.Close()
			os.Remove(path)
		})
	}
}

// latencies is a histogram of announce times in microseconds, in buckets
// so that recording one allocates nothing.
type latencies [100_000]uint64

func (h *latencies) record(d time.Duration) { h[min(d.Microseconds(), int64(len(h)-1))]++ }

// quantile returns the smallest bucket at or below which a fraction q of
// the announces fall; q = 1 gives the longest.
func (h *latencies) quantile(q float64) int {
	var total, seen uint64
	for _, n := range h {
		total += n
	}
	for us, n := range h {
		seen += n
		if n > 0 && float64(seen) >= q*float64(total) {
			return us
		}
	}
	return 0
}

// BenchmarkSaveUnderLoad saves a store of a million peers while another
// goroutine announces into it (one per core). It reports how long single
// announces took while saves ran, beside how long they took in as long a
// stretch with no save, and the longest a shard was locked by a save.
func BenchmarkSaveUnderLoad(b *testing.B) {
	s := filledStore(1_000_000)
	path := filepath.Join(b.TempDir(), "peers.db")
	var idle, saving latencies
	var current atomic.Pointer[latencies]
	var stop atomic.Bool
	current.Store(&saving)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var resp bittorrent.AnnounceResponse
		for i := 0; !stop.Load(); i++ {
			req := bittorrent.AnnounceRequest{InfoHash: hashOf(i % 100_000), Addr: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), Port: 7000, Left: 1, NumWant: 50}
			h := current.Load()
			start := time.Now()
			s.Announce(&req, &resp)
			h.record(time.Since(start))
		}
	}()

	var longestLock time.Duration
	started := time.Now()
	b.ResetTimer()
	for b.Loop() {
		st, err := Save(path, s, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		longestLock = max(longestLock, st.LongestLock)
	}
	b.StopTimer()
	current.Store(&idle)
	time.Sleep(time.Since(started)) // the same stretch without saves, for comparison
	stop.Store(true)
	<-done

	b.ReportMetric(float64(longestLock.Microseconds()), "max-shard-lock-µs")
	b.ReportMetric(float64(saving.quantile(1)), "max-announce-saving-µs")
	b.ReportMetric(float64(idle.quantile(1)), "max-announce-idle-µs")
	b.ReportMetric(float64(saving.quantile(0.999)), "p99.9-announce-saving-µs")
	b.ReportMetric(float64(idle.quantile(0.999)), "p99.9-announce-idle-µs")
}
