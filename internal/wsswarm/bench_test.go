package wsswarm

import (
	"fmt"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// BenchmarkAnnounce is a peer re-announcing in a swarm of 100 and picking
// 5 others, as a WebTorrent client with offers does: the store's part of a
// WebSocket announce.
func BenchmarkAnnounce(b *testing.B) {
	s := New[*conn]()
	h := bittorrent.InfoHash{1}
	for i := range 100 {
		s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(i), Conn: &conn{fmt.Sprint(i)}, Now: t0}, nil)
	}
	self, _ := s.Find(&h, new(id(0)))
	a := Announce[*conn]{InfoHash: h, PeerID: id(0), Conn: self, Want: 5, Now: t0}
	picked := make([]*conn, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		picked, _, _ = s.Announce(&a, picked[:0])
	}
}
