package daemon

import (
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
	"github.com/trakx/trakx/internal/udpproto"
)

// TestUDPReceiveDropsAreCounted wedges every UDP worker on a shard lock,
// floods the socket past its receive buffer, and frees the workers: every
// announce sent was either answered or dropped by the kernel, and the
// drops are what /debug/vars and /metrics report.
func TestUDPReceiveDropsAreCounted(t *testing.T) {
	d := startUDPOnly(t, "127.0.0.1:0")
	stats := d.StatsAddr().String()

	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	id := c.Connect()
	hash := tt.Hash("drops")
	release := d.store.Stall(&hash)
	// Far more than the 4 MiB buffer (8 MiB as the kernel counts it) holds.
	const sent = 60_000
	req := &bittorrent.AnnounceRequest{InfoHash: hash, Port: 1, NumWant: 0}
	pkt := udpproto.AppendAnnounceRequest(nil, id, 1, req)
	for range sent {
		if _, err := c.Conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	release()
	// Every announce is answered or dropped, and nothing else.
	drops := tt.WaitForVar(t, stats, "trakx.udp.receive_drops", func(v float64) bool {
		answered, _ := tt.Lookup(tt.Vars(t, stats), "trakx.udp.announce")
		return v > 0 && answered+v == sent
	})
	t.Logf("%d announces: %.0f dropped by the kernel", sent, drops)
}
