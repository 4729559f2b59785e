package wsconformance

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// RFC 6455 §5.4: fragmentation. Autobahn chapter 5.

// split cuts msg into fragments at the given offsets: a text frame, then
// continuations, the last final.
func split(msg string, at ...int) []frame {
	var frames []frame
	start := 0
	for _, end := range append(at, len(msg)) {
		op := opCont
		if start == 0 && len(frames) == 0 {
			op = opText
		}
		frames = append(frames, fragment(op, msg[start:end], false))
		start = end
	}
	frames[len(frames)-1].fin = true
	return frames
}

// TestFragmentationAccepted: a message in fragments is one message, answered
// once it is whole.
func TestFragmentationAccepted(t *testing.T) {
	t.Parallel()
	bytewise := make([]int, 0, len(scrape))
	for i := 1; i < len(scrape); i++ {
		bytewise = append(bytewise, i)
	}
	runOKCases(t, shared, []okCase{
		{"5.3-two-fragments", split(scrape, 9)},
		{"three-fragments", split(scrape, 5, 12)},
		{"one-byte-fragments", split(scrape, bytewise...)},
		{"large-fragments", split(paddedScrape(20000), 1, 10000, 19999)},
		// Autobahn 6.1.1-6.1.3: empty fragments anywhere.
		{"6.1.2-empty-first", append([]frame{fragment(opText, "", false)}, fragment(opCont, scrape, true))},
		{"6.1.3-empty-middle", []frame{fragment(opText, scrape[:9], false), fragment(opCont, "", false),
			fragment(opCont, "", false), fragment(opCont, scrape[9:], true)}},
		{"empty-last", []frame{fragment(opText, scrape, false), fragment(opCont, "", true)}},
		{"all-empty-but-one", []frame{fragment(opText, "", false), fragment(opCont, "", false), fragment(opCont, scrape, false),
			fragment(opCont, "", false), fragment(opCont, "", true)}},
		// An unsolicited pong between fragments is ignored (§5.5.3).
		{"pong-between", []frame{fragment(opText, scrape[:9], false), pong([]byte("unsolicited")), fragment(opCont, scrape[9:], true)}},
	})
	t.Run("5.4-two-fragments-in-chops", func(t *testing.T) {
		t.Parallel()
		c := shared.open(t)
		c.sendChopped(1, split(scrape, 9)...)
		c.expectScrapeReply()
		c.alive()
	})
}

// TestFragmentationInterleavedPings: §5.4, §5.5.2: control frames may come
// between the fragments of a message. Each ping is answered as it comes: its
// pong, with its payload, in order, before the reply to the message, which
// comes when the message is whole. Autobahn 5.6-5.8, 5.19, 5.20.
func TestFragmentationInterleavedPings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		chunk  int // 0: all in one write
		pieces []int
	}{
		{"5.6-one-ping", 0, []int{9}},
		{"5.8-one-ping-in-chops", 1, []int{9}},
		{"5.19-four-pings", 0, []int{3, 9, 12, 15}},
		{"pings-between-every-byte", 0, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}},
		{"pings-in-chops-of-5", 5, []int{4, 8, 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fragments := split(scrape, tc.pieces...)
			var frames []frame
			var payloads [][]byte
			for i, f := range fragments {
				frames = append(frames, f)
				if i < len(fragments)-1 {
					p := []byte(fmt.Sprintf("ping %d between fragments", i))
					payloads = append(payloads, p)
					frames = append(frames, ping(p))
				}
			}
			c := shared.open(t)
			if tc.chunk > 0 {
				c.sendChopped(tc.chunk, frames...)
			} else {
				c.send(frames...)
			}
			for i, want := range payloads {
				f := c.must()
				if f.OpCode != ws.OpPong || !bytes.Equal(f.payload, want) {
					t.Fatalf("frame %d: got a %s, want the pong %q", i, f, want)
				}
			}
			c.expectScrapeReply()
			c.alive()
		})
	}
}

// TestFragmentationErrors: §5.4: a continuation frame continues a message
// begun by a text or binary frame with FIN clear; a data frame that is not
// a continuation may not come while one is open. Both are protocol errors.
func TestFragmentationErrors(t *testing.T) {
	t.Parallel()
	runFailCases(t, shared, []failCase{
		{name: "5.9-continuation-fin-nothing-to-continue", frames: []frame{fragment(opCont, scrape, true), text(scrape)},
			want: ws.StatusProtocolError},
		{name: "5.12-continuation-nothing-to-continue", frames: []frame{fragment(opCont, scrape, false), fragment(opCont, "", true)},
			want: ws.StatusProtocolError},
		{name: "empty-continuation-nothing-to-continue", frames: []frame{fragment(opCont, "", true)}, want: ws.StatusProtocolError},
		{name: "5.15-continuation-after-a-finished-message", frames: append(split(scrape, 9),
			fragment(opCont, "x", false), fragment(opCont, "y", true), text(scrape)), replies: 1, want: ws.StatusProtocolError},
		{name: "5.18-text-inside-a-message", frames: []frame{fragment(opText, scrape[:9], false), fragment(opText, scrape[9:], true)},
			want: ws.StatusProtocolError},
		{name: "final-text-inside-a-message", frames: []frame{fragment(opText, scrape[:9], false), text(scrape)},
			want: ws.StatusProtocolError},
		{name: "binary-inside-a-text-message", frames: []frame{fragment(opText, scrape[:9], false),
			{fin: true, op: opBinary, payload: []byte(scrape[9:])}}, want: ws.StatusProtocolError},
		{name: "text-inside-a-message-after-a-ping", frames: []frame{fragment(opText, scrape[:9], false), ping([]byte("p")),
			fragment(opText, scrape[9:], true)}, pongs: 1, want: ws.StatusProtocolError},
	})
}
