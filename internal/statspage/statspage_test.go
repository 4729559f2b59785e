package statspage

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/metrics"
)

// TestHistoryIsBounded: the ring keeps the last day's points and no
// more, oldest first, in the memory the package documents.
func TestHistoryIsBounded(t *testing.T) {
	if size := unsafe.Sizeof(point{}); size != 80 {
		t.Fatalf("a point is %d bytes; the package says 80", size)
	}
	var h history
	for i := range historyPoints + 5 {
		h.add(point{At: int64(i), Torrents: uint32(i)})
	}
	base, pts := h.since(-1)
	if base != nil || len(pts) != historyPoints || pts[0].At != 5 || pts[len(pts)-1].At != int64(historyPoints+4) {
		t.Fatalf("%d points from %d to %d (base %v)", len(pts), pts[0].At, pts[len(pts)-1].At, base)
	}
	if cap(h.points) != historyPoints {
		t.Fatalf("the ring grew to %d", cap(h.points))
	}
	base, pts = h.since(int64(historyPoints + 2))
	if base == nil || base.At != int64(historyPoints+2) || len(pts) != 2 {
		t.Fatalf("since the last but two: base %v, %d points", base, len(pts))
	}
}

// TestHistoryRates: rates are per second between points, starting from
// the base, and 0 where a counter went back (a restart).
func TestHistoryRates(t *testing.T) {
	base := &point{At: 100, Errors: 10}
	h := historyOf(base, []point{{At: 110, Errors: 30}, {At: 120, Errors: 5}, {At: 130, Errors: 25}})
	want := []float64{2, 0, 2}
	for i, w := range want {
		if h.ErrorsPerSecond[i] != w {
			t.Fatalf("errors per second %v, want %v", h.ErrorsPerSecond, want)
		}
	}
}

// TestBusiestTorrents: the 20 with the most peers, most first, ties to
// the lower info hash, whatever the order of the visit; one look serves
// every caller for 10 s.
func TestBusiestTorrents(t *testing.T) {
	looks := 0
	visit := func(f func(*bittorrent.InfoHash, bittorrent.ScrapeStats)) {
		looks++
		for i := range 50 {
			n := (i * 7) % 50 // not in order of size
			var h bittorrent.InfoHash
			copy(h[:], fmt.Sprintf("torrent %02d", n))
			f(&h, bittorrent.ScrapeStats{Complete: uint32(n / 2), Incomplete: uint32(n - n/2), Downloaded: uint32(i)})
		}
		var h bittorrent.InfoHash
		copy(h[:], "torrent 48 twin") // as many peers as torrent 48
		f(&h, bittorrent.ScrapeStats{Complete: 48})
	}
	b := busiest{visit: visit}
	now := time.Now()
	got := b.get(now)
	if len(got) != busiestCount {
		t.Fatalf("%d listed", len(got))
	}
	for i, tor := range got {
		peers := tor.Seeders + tor.Leechers
		want := uint32(49 - i)
		if i >= 2 {
			want = uint32(50 - i) // torrent 48 and its twin share one size
		}
		if peers != want {
			t.Fatalf("place %d has %d peers, want %d: %+v", i, peers, want, got)
		}
	}
	twin := fmt.Sprintf("%x", "torrent 48 twin")
	if got[1].InfoHash[:len(twin)] == twin || got[2].InfoHash[:len(twin)] != twin {
		t.Fatalf("the tie went the wrong way: %+v", got[1:3])
	}
	b.get(now.Add(busiestEvery - time.Millisecond))
	if looks != 1 {
		t.Fatalf("%d looks within %v", looks, busiestEvery)
	}
	b.get(now.Add(busiestEvery))
	if looks != 2 {
		t.Fatalf("%d looks after %v", looks, busiestEvery)
	}
}

// TestConcurrentViewers: viewers reading while the sampler writes race on
// nothing (go test -race), and the history ends with exactly the points
// taken.
func TestConcurrentViewers(t *testing.T) {
	m := metrics.New(nil)
	p := New(Options{Totals: m.Totals, Visit: func(f func(*bittorrent.InfoHash, bittorrent.ScrapeStats)) {
		f(&bittorrent.InfoHash{1}, bittorrent.ScrapeStats{Complete: 1})
	}})
	srv := httptest.NewServer(mux(p))
	defer srv.Close()
	const samples = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		for i := range samples {
			m.NewUDP().Answer(metrics.ActionAnnounce, netip.MustParseAddr("192.0.2.1"))
			p.sample(start.Add(time.Duration(i) * time.Second))
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				resp, err := http.Get(srv.URL + "/stats.json?history=1")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if _, pts := p.history.since(-1); len(pts) != samples {
		t.Fatalf("%d points, want %d", len(pts), samples)
	}
	if f := p.Figures(time.Now()); f.Requests.Total["udp"]["announce"] != samples || len(f.Busiest) != 1 {
		t.Fatalf("figures %+v", f)
	}
}

func mux(p *Page) *http.ServeMux {
	m := http.NewServeMux()
	p.Register(m)
	return m
}
