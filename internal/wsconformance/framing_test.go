package wsconformance

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// RFC 6455 §5.1-§5.3, §5.6: base framing. Autobahn chapters 1 (framing),
// 3 (reserved bits) and 4 (opcodes).

// TestFramingMasking: §5.1, §5.3: a server MUST close the connection on an
// unmasked frame from a client; trakx says why with 1002.
func TestFramingMasking(t *testing.T) {
	t.Parallel()
	unmasked := func(f frame) frame { f.unmasked = true; return f }
	runFailCases(t, shared, []failCase{
		{name: "text", frames: []frame{unmasked(text(scrape))}, want: ws.StatusProtocolError},
		{name: "empty-text", frames: []frame{unmasked(text(""))}, want: ws.StatusProtocolError},
		{name: "ping", frames: []frame{unmasked(ping([]byte("x")))}, want: ws.StatusProtocolError},
		{name: "close", frames: []frame{unmasked(closeWith(closeBody(1000, "")))}, want: ws.StatusProtocolError},
		{name: "continuation", frames: []frame{fragment(opText, `{"action"`, false), unmasked(fragment(opCont, `:"scrape"}`, true))},
			want: ws.StatusProtocolError},
		{name: "after-a-message", frames: []frame{text(scrape), unmasked(text(scrape))}, replies: 1, want: ws.StatusProtocolError},
	})
}

// TestFramingReservedBits: §5.2: RSV1-3 must be 0 when no extension was
// negotiated (none is offered here): 1002. Autobahn 3.1-3.7: what follows
// the bad frame (a ping) is not answered.
func TestFramingReservedBits(t *testing.T) {
	t.Parallel()
	rsv := func(f frame, bits byte) frame { f.rsv = bits; return f }
	pingAfter := ping([]byte("must not be answered"))
	runFailCases(t, shared, []failCase{
		{name: "3.1-text-rsv1", frames: []frame{rsv(text(scrape), 4)}, want: ws.StatusProtocolError},
		{name: "3.2-text-rsv2-after-a-message", frames: []frame{text(scrape), rsv(text(scrape), 2), pingAfter}, replies: 1,
			want: ws.StatusProtocolError},
		{name: "3.3-text-rsv3-after-a-message", frames: []frame{text(scrape), rsv(text(scrape), 1), pingAfter}, replies: 1,
			want: ws.StatusProtocolError},
		{name: "3.4-text-rsv1+3", frames: []frame{rsv(text(scrape), 5), pingAfter}, want: ws.StatusProtocolError},
		{name: "3.5-binary-rsv1+2", frames: []frame{rsv(frame{fin: true, op: opBinary, payload: []byte{0, 1, 2}}, 6)},
			want: ws.StatusProtocolError},
		{name: "3.6-ping-rsv-all", frames: []frame{rsv(ping([]byte("x")), 7)}, want: ws.StatusProtocolError},
		{name: "3.7-close-rsv-all", frames: []frame{rsv(closeWith(closeBody(1000, "")), 7)}, want: ws.StatusProtocolError},
		{name: "continuation-rsv1", frames: []frame{fragment(opText, `{"action"`, false), rsv(fragment(opCont, `:"scrape"}`, true), 4)},
			want: ws.StatusProtocolError},
	})
}

// TestFramingReservedOpcodes: §5.2: opcodes 3-7 (data) and 0xB-0xF
// (control) are reserved: 1002. Autobahn 4.1.1-4.1.5, 4.2.1-4.2.5.
func TestFramingReservedOpcodes(t *testing.T) {
	t.Parallel()
	var cases []failCase
	for i, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		autobahn := fmt.Sprintf("4.1.%d", i+1)
		if op >= 0xB {
			autobahn = fmt.Sprintf("4.2.%d", i-4)
		}
		var payload []byte
		if i%2 == 1 {
			payload = []byte("reserved")
		}
		frames := []frame{{fin: true, op: op, payload: payload}}
		replies := 0
		if i%3 == 2 { // as Autobahn 4.1.3: a good message first, a ping after
			frames = []frame{text(scrape), frames[0], ping([]byte("must not be answered"))}
			replies = 1
		}
		cases = append(cases, failCase{name: fmt.Sprintf("%s-opcode-%d", autobahn, op), frames: frames, replies: replies, want: ws.StatusProtocolError})
	}
	runFailCases(t, shared, cases)
}

// TestFramingBinary: the WebTorrent protocol is JSON text: a binary
// message is data trakx cannot accept, 1003 (§7.4.1). Autobahn 1.2.x
// sends binary messages of several sizes.
func TestFramingBinary(t *testing.T) {
	t.Parallel()
	bin := func(n int, fin bool) frame { return frame{fin: fin, op: opBinary, payload: make([]byte, n)} }
	runFailCases(t, shared, []failCase{
		{name: "1.2.1-empty", frames: []frame{bin(0, true)}, want: ws.StatusUnsupportedData},
		{name: "1.2.2-125-bytes", frames: []frame{bin(125, true)}, want: ws.StatusUnsupportedData},
		{name: "1.2.3-126-bytes", frames: []frame{bin(126, true)}, want: ws.StatusUnsupportedData},
		{name: "1.2.5-128-bytes", frames: []frame{bin(128, true)}, want: ws.StatusUnsupportedData},
		{name: "json-as-binary", frames: []frame{{fin: true, op: opBinary, payload: []byte(scrape)}}, want: ws.StatusUnsupportedData},
		{name: "first-fragment", frames: []frame{bin(10, false), {fin: true, op: opCont, payload: make([]byte, 10)}},
			want: ws.StatusUnsupportedData},
		{name: "after-a-message", frames: []frame{text(scrape), bin(3, true)}, replies: 1, want: ws.StatusUnsupportedData},
	})
}

// TestFramingControlFrames: §5.5: a control frame carries at most 125
// bytes and is never fragmented: 1002. Autobahn 2.5 (ping of 126 bytes),
// 7.3.6 (close of 126), 5.1 and 5.2 (ping and pong in fragments).
func TestFramingControlFrames(t *testing.T) {
	t.Parallel()
	long := make([]byte, 126)
	for i := range long {
		long[i] = 'x'
	}
	runFailCases(t, shared, []failCase{
		{name: "2.5-ping-126-bytes", frames: []frame{ping(long)}, want: ws.StatusProtocolError},
		{name: "pong-126-bytes", frames: []frame{pong(long)}, want: ws.StatusProtocolError},
		{name: "7.3.6-close-126-bytes", frames: []frame{closeWith(closeBody(1000, string(long[:124])))}, want: ws.StatusProtocolError},
		{name: "ping-65535-bytes-declared", frames: []frame{{fin: true, op: opPing, declared: 65535, hasDeclared: true}},
			want: ws.StatusProtocolError},
		{name: "5.1-ping-fragmented", frames: []frame{{op: opPing, payload: []byte("hello, ")}, {fin: true, op: opCont, payload: []byte("world")}},
			want: ws.StatusProtocolError},
		{name: "5.2-pong-fragmented", frames: []frame{{op: opPong, payload: []byte("hello, ")}, {fin: true, op: opCont, payload: []byte("world")}},
			want: ws.StatusProtocolError},
		{name: "close-fragmented", frames: []frame{{op: opClose, payload: closeBody(1000, "")}}, want: ws.StatusProtocolError},
		{name: "ping-fragmented-inside-a-message", frames: []frame{fragment(opText, `{"action"`, false), {op: opPing, payload: []byte("x")}},
			want: ws.StatusProtocolError},
	})
}

// TestFramingLengthMSB: §5.2: "the most significant bit MUST be 0" in a
// 64-bit length. A length with it set is a protocol error (1002), not a
// large message: only the header is sent.
func TestFramingLengthMSB(t *testing.T) {
	t.Parallel()
	var cases []failCase
	for _, n := range []uint64{1 << 63, 1<<63 + 19, 1<<64 - 1} {
		cases = append(cases, failCase{name: fmt.Sprintf("%#x", n), frames: []frame{{fin: true, op: opText, declared: n, hasDeclared: true}},
			want: ws.StatusProtocolError})
	}
	runFailCases(t, shared, cases)
}

// TestFramingDeclaredTooBig: a frame whose header declares more than
// websocket.max_message_bytes is refused with 1009 as soon as its header
// is in: the payload is never sent (it may never be, by a hostile client).
func TestFramingDeclaredTooBig(t *testing.T) {
	t.Parallel()
	max := uint64(shared.maxMessage)
	var cases []failCase
	for _, n := range []uint64{max + 1, 1 << 32, 1 << 62, 1<<63 - 1} {
		cases = append(cases, failCase{name: fmt.Sprintf("%d", n), frames: []frame{{fin: true, op: opText, declared: n, hasDeclared: true}},
			want: ws.StatusMessageTooBig})
	}
	cases = append(cases, failCase{name: "first-fragment", frames: []frame{{op: opText, declared: max + 1, hasDeclared: true}},
		want: ws.StatusMessageTooBig})
	runFailCases(t, shared, cases)
}

// TestFramingLengthEncodings: §5.2: a receiver reads the length however it
// is encoded. The RFC asks senders for the shortest encoding, but a
// longer one (a 16- or 64-bit field for a short payload) is still a
// length, and the message is answered.
func TestFramingLengthEncodings(t *testing.T) {
	t.Parallel()
	enc := func(msg string, lenBytes int) frame { f := text(msg); f.lenBytes = lenBytes; return f }
	cases := []okCase{
		{"7-bit", []frame{enc(scrape, 0)}},
		{"16-bit-of-19", []frame{enc(scrape, 2)}},
		{"64-bit-of-19", []frame{enc(scrape, 8)}},
		{"16-bit-of-126", []frame{enc(paddedScrape(126), 0)}},
		{"64-bit-of-126", []frame{enc(paddedScrape(126), 8)}},
		{"16-bit-of-65535", []frame{enc(paddedScrape(min(65535, shared.maxMessage)), 2)}},
		{"64-bit-of-fragments", []frame{{op: opText, payload: []byte(`{"action":`), lenBytes: 8},
			{fin: true, op: opCont, payload: []byte(`"scrape"}`), lenBytes: 8}}},
		{"zero-masking-key", []frame{{fin: true, op: opText, payload: []byte(scrape), zeroKey: true}}},
	}
	if shared.maxMessage > 65535 {
		cases = append(cases, okCase{"64-bit-of-65536", []frame{enc(paddedScrape(65536), 0)}})
	}
	runOKCases(t, shared, cases)

	// A 64-bit encoding of a 10-byte message: too short for a request,
	// but a message all the same, answered (with a failure).
	t.Run("64-bit-of-10", func(t *testing.T) {
		t.Parallel()
		c := shared.open(t)
		msg := `{"a":1234}`
		if len(msg) != 10 {
			t.Fatal("the message is not 10 bytes")
		}
		c.send(enc(msg, 8))
		if m := c.recvJSON(); m["failure reason"] == nil {
			t.Errorf("got %v, want a failure reason for a message with no action", m)
		}
		c.alive()
	})
}

// TestFramingChopped: the frames' bytes may arrive in any pieces (Autobahn
// 1.1.7, 1.1.8, 2.6): a message sent a byte at a time, or in uneven
// chunks that split headers, masking keys and payloads, is answered whole.
func TestFramingChopped(t *testing.T) {
	t.Parallel()
	for _, chunk := range []int{1, 3, 7, 1000} {
		t.Run(fmt.Sprintf("chunks-of-%d", chunk), func(t *testing.T) {
			t.Parallel()
			c := shared.open(t)
			c.sendChopped(chunk, text(paddedScrape(300)), text(scrape))
			c.expectScrapeReply()
			c.expectScrapeReply()
		})
	}
}

// TestFramingPipelined: many messages in one write are answered each, in
// order.
func TestFramingPipelined(t *testing.T) {
	t.Parallel()
	c := shared.open(t)
	var frames []frame
	var hashes []string
	peer := id()
	for range 20 {
		h := id()
		hashes = append(hashes, h)
		frames = append(frames, textBytes(announce(h, peer)))
	}
	c.send(frames...)
	for _, h := range hashes {
		c.expectAnnounceReply(h)
	}
}

// TestFramingEmptyMessage: Autobahn 1.1.1: an empty text message is a
// message; it is not JSON, so it may get a failure, but the connection
// stays open and the next message is answered.
func TestFramingEmptyMessage(t *testing.T) {
	t.Parallel()
	c := shared.open(t)
	c.send(text(""), text(scrape))
	for range 2 {
		msg := c.recv()
		var m map[string]any
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("reply %q: %v", msg, err)
		}
		if m["action"] == "scrape" && m["files"] != nil {
			return
		}
		if m["failure reason"] == nil {
			t.Fatalf("got %v, want a failure or the scrape's reply", m)
		}
	}
	t.Fatal("the scrape after the empty message got no reply")
}
