package websocket

import (
	"io"
	"net/netip"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/metrics"
	tt "github.com/trakx/trakx/internal/trackertest"
	"golang.org/x/sys/unix"
)

// BenchmarkHandleAnnounce is one WebTorrent announce without offers, from
// its text message to its reply on the socket: parse, admit, the swarm,
// encode, write. The swarm holds 100 peers.
func BenchmarkHandleAnnounce(b *testing.B) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := NewServer(options(), openGate{}, metrics.New(nil), log)
	if err != nil {
		b.Fatal(err)
	}
	// Replies go to /dev/null, which takes every byte at once: a socket
	// pair's reader could fall behind and leave the connection owing bytes
	// to a loop it does not have.
	devNull, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(devNull)
	h := tt.Hash("bench")
	for i := 1; i <= 100; i++ {
		other := &conn{s: s, fd: devNull, client: netip.MustParseAddr("192.0.2.2")}
		s.handle(other, announceJSON(h, peerID(i), 0))
	}
	c := &conn{s: s, fd: devNull, client: netip.MustParseAddr("192.0.2.1")}
	msg := announceJSON(h, peerID(0), 0)
	b.ReportAllocs()
	for b.Loop() {
		s.handle(c, msg)
	}
}
