package sockstat

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestUDPDropsCountsWhatTheKernelDropped fills a small receive buffer that
// nobody reads: every datagram sent either waits in the buffer or was
// dropped, so drops = sent - received, exactly (loopback delivers at once).
func TestUDPDropsCountsWhatTheKernelDropped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("drops are read from /proc/net/udp")
	}
	for _, network := range []string{"udp4", "udp6"} {
		addr := map[string]string{"udp4": "127.0.0.1:0", "udp6": "[::1]:0"}[network]
		rx, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		rx.(*net.UDPConn).SetReadBuffer(4096)
		other, _ := net.ListenPacket(network, addr) // not counted
		defer other.Close()
		drops := UDPDrops([]*net.UDPConn{rx.(*net.UDPConn)})
		if d := drops(); d != 0 {
			t.Fatalf("%s: %d drops before anything was sent", network, d)
		}
		tx, err := net.Dial(network, rx.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		const sent = 500
		payload := []byte(strings.Repeat("x", 200))
		for range sent {
			tx.Write(payload)
		}
		received := 0
		buf := make([]byte, 512)
		for {
			rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, _, err := rx.ReadFrom(buf); err != nil {
				break
			}
			received++
		}
		if d := drops(); d == 0 || d != uint64(sent-received) {
			t.Fatalf("%s: %d drops read; %d sent, %d received", network, d, sent, received)
		}
	}
}

func TestDropsInReadsTheLastColumn(t *testing.T) {
	table := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 0100007F:1B39 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17
  2: 0100007F:1B3A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 5
  3: garbage
`
	if got := dropsIn(strings.NewReader(table), map[uint64]bool{4242: true, 9: true}); got != 17 {
		t.Fatalf("%d drops, want 17", got)
	}
}
