package udp

import (
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/swarm"
	"github.com/trakx/trakx/internal/udpproto"
)

// BenchmarkAnnounce is the whole request path short of the socket: parse,
// check the connection id, store, choose peers, encode. It must not
// allocate.
// announceBench is a UDP worker facing a swarm of 1000 public peers, and
// an announce packet from a client known to it.
func announceBench(tb testing.TB) (w *worker, pkt []byte, client netip.AddrPort) {
	return announceBenchWith(tb, 1e9)
}

// announceBenchWith is announceBench with a per-source budget of rate
// requests a second (0: off).
func announceBenchWith(tb testing.TB, rate float64) (w *worker, pkt []byte, client netip.AddrPort) {
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	tb.Cleanup(store.Close)
	log := logrus.New()
	log.SetOutput(io.Discard)
	// A budget far above what the test sends: charged, never refused.
	budget := ratelimit.New(ratelimit.Config{Rate: rate, Burst: 1e6, Tracked: 1000})
	s := NewServer(nil, store, udpproto.NewConnectionIDs(5*time.Minute), budget, metrics.New(nil), log)
	w = &worker{Server: s, counters: &metrics.UDP{}}

	var hash bittorrent.InfoHash
	copy(hash[:], "benchmark-torrent---")
	client = netip.MustParseAddrPort("192.0.2.1:6881")
	// Public addresses: private ones would be withheld from this public
	// client and the reply would carry no peers at all.
	for i := range 1000 {
		req := bittorrent.AnnounceRequest{InfoHash: hash, Addr: netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), Port: 6881, Left: uint64(i % 2)}
		store.Announce(&req, &bittorrent.AnnounceResponse{})
	}
	id := s.ids.Issue(client.Addr(), uint32(time.Now().Unix()))
	req := bittorrent.AnnounceRequest{InfoHash: hash, Port: 6881, Left: 1, NumWant: 50}
	return w, udpproto.AppendAnnounceRequest(nil, id, 1, &req), client
}

func BenchmarkAnnounce(b *testing.B) {
	for _, budget := range []struct {
		name string
		rate float64
	}{{"budget-off", 0}, {"budget-on", 1e9}} {
		b.Run(budget.name, func(b *testing.B) {
			w, pkt, client := announceBenchWith(b, budget.rate)
			out := make([]byte, 0, 2048)
			b.ReportAllocs()
			for b.Loop() {
				out = w.answer(pkt, client, false, time.Now(), out[:0])
				if len(out) != 20+50*6 {
					b.Fatalf("reply of %d bytes", len(out))
				}
			}
		})
	}
}

// TestAnnounceDoesNotAllocate asserts the UDP request path's allocations:
// none for an announce answered with 50 peers.
func TestAnnounceDoesNotAllocate(t *testing.T) {
	w, pkt, client := announceBench(t)
	out := make([]byte, 0, 2048)
	out = w.answer(pkt, client, false, time.Now(), out[:0])
	if n := testing.AllocsPerRun(1000, func() { out = w.answer(pkt, client, false, time.Now(), out[:0]) }); n != 0 || len(out) != 20+50*6 {
		t.Fatalf("%v allocations per announce, reply of %d bytes", n, len(out))
	}
}

// TestMmsghdrMatchesC: struct mmsghdr is a msghdr then a 4-byte length,
// padded to the msghdr's alignment; the kernel walks the array by that
// size. (CI runs the UDP tests on 386 too, where it is 32 bytes.)
func TestMmsghdrMatchesC(t *testing.T) {
	align := unsafe.Alignof(syscall.Msghdr{})
	want := (unsafe.Sizeof(syscall.Msghdr{}) + 4 + align - 1) &^ (align - 1)
	if got := unsafe.Sizeof(mmsghdr{}); got != want || unsafe.Offsetof(mmsghdr{}.len) != unsafe.Sizeof(syscall.Msghdr{}) {
		t.Fatalf("mmsghdr is %d bytes, C's %d", got, want)
	}
	if size := unsafe.Sizeof(uintptr(0)); (size == 8) != (want == 64) || (size == 4) != (want == 32) {
		t.Fatalf("mmsghdr of %d bytes with %d-byte pointers", want, size)
	}
}
