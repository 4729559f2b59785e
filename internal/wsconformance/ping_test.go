package wsconformance

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// RFC 6455 §5.5.2 and §5.5.3: ping and pong. Autobahn chapter 2.

// expectPong reads the next frame, which must be a pong carrying payload.
func (c *conn) expectPong(payload []byte) {
	c.t.Helper()
	f := c.must()
	if f.OpCode != ws.OpPong || !f.Fin || !bytes.Equal(f.payload, payload) {
		c.t.Fatalf("got a %s, want a pong with the ping's %d bytes %q", f, len(payload), payload)
	}
}

// TestPingEveryLength: §5.5.2, §5.5.3: a ping of any payload from 0 to 125
// bytes is answered by a pong with the same payload, whatever the bytes
// (binary, not UTF-8). Autobahn 2.1-2.4.
func TestPingEveryLength(t *testing.T) {
	t.Parallel()
	c := shared.open(t)
	for n := 0; n <= 125; n++ {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(n*7 + i*13) // all byte values appear, 0xff and 0x80 among them
		}
		c.send(ping(p))
		c.expectPong(p)
	}
	c.alive()
}

// TestPingCases: Autobahn 2.1-2.4, 2.6, 2.10, 2.11, each on a connection of
// its own.
func TestPingCases(t *testing.T) {
	t.Parallel()
	max := bytes.Repeat([]byte{0xfe}, 125)
	for _, tc := range []struct {
		name     string
		payloads [][]byte
		chunk    int // 0: one write
	}{
		{"2.1-no-payload", [][]byte{nil}, 0},
		{"2.2-text-payload", [][]byte{[]byte("Hello, world!")}, 0},
		{"2.3-binary-payload", [][]byte{{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}}, 0},
		{"2.4-125-bytes", [][]byte{max}, 0},
		{"2.6-125-bytes-in-chops", [][]byte{max}, 1},
		{"2.10-ten-pings", tenPayloads(), 0},
		{"2.11-ten-pings-in-chops", tenPayloads(), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := shared.open(t)
			var frames []frame
			for _, p := range tc.payloads {
				frames = append(frames, ping(p))
			}
			if tc.chunk > 0 {
				c.sendChopped(tc.chunk, frames...)
			} else {
				c.send(frames...)
			}
			for _, p := range tc.payloads {
				c.expectPong(p)
			}
			c.alive()
		})
	}
}

func tenPayloads() [][]byte {
	var p [][]byte
	for i := range 10 {
		p = append(p, []byte(fmt.Sprintf("payload-%d", i)))
	}
	return p
}

// TestUnsolicitedPong: §5.5.3: a pong nobody asked for (a unidirectional
// heartbeat) needs no answer, and the connection carries on: the next
// frame from the server is the reply to the next message, or the pong to
// the next ping. Autobahn 2.7-2.9.
func TestUnsolicitedPong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		pongs [][]byte
	}{
		{"2.7-no-payload", [][]byte{nil}},
		{"2.8-payload", [][]byte{[]byte("unsolicited pong payload")}},
		{"125-bytes", [][]byte{bytes.Repeat([]byte("p"), 125)}},
		{"several", [][]byte{nil, []byte("a"), {0xff, 0x00}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := shared.open(t)
			var frames []frame
			for _, p := range tc.pongs {
				frames = append(frames, pong(p))
			}
			c.send(append(frames, text(scrape))...)
			c.expectScrapeReply() // no frame before it
			// 2.9: an unsolicited pong, then a ping: the ping's pong only.
			c.send(pong([]byte("unsolicited")), ping([]byte("solicited")))
			c.expectPong([]byte("solicited"))
			c.alive()
		})
	}
}
