package wsconformance

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// RFC 6455 §5.5.1, §7: the closing handshake and its codes. Autobahn
// chapter 7.

// TestCloseEchoesValidCodes: §5.5.1, §7.4: a close with a code an endpoint
// may send (1000-1003, 1007-1011, 1012-1014 as registered with IANA since,
// 3000-4999) is answered by a close frame echoing it; then the server
// closes TCP, and since it has read all the client sent, with a FIN.
// Autobahn 7.7.1-7.7.13.
func TestCloseEchoesValidCodes(t *testing.T) {
	t.Parallel()
	codes := []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	for _, code := range codes {
		for _, reason := range []string{"", "bye", "κόσμε"} {
			name := fmt.Sprintf("%d", code)
			if n := autobahn77(code); n > 0 {
				name = fmt.Sprintf("7.7.%d-%d", n, code)
			}
			if reason != "" {
				name += "-reason-" + reason
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := shared.open(t)
				c.send(closeWith(closeBody(code, reason)))
				c.expectCleanClose(ws.StatusCode(code))
			})
		}
	}
}

// autobahn77 numbers the valid close codes as Autobahn 7.7.x does.
func autobahn77(code uint16) int {
	for i, c := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		if c == code {
			return i + 1
		}
	}
	return 0
}

// TestCloseBody: §5.5.1: a close body is empty, or a 2-byte code and a
// UTF-8 reason, 125 bytes in all. An empty body is answered with 1000 (the
// server may not send 1005, "no code", §7.4.1); a 1-byte body is a protocol
// error. Autobahn 7.3.1-7.3.5 (7.3.6, a 126-byte body, is in
// TestFramingControlFrames).
func TestCloseBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		body  []byte
		want  ws.StatusCode
		clean bool
	}{
		{"7.3.1-empty", nil, ws.StatusNormalClosure, true},
		{"7.3.2-one-byte", []byte{0x03}, ws.StatusProtocolError, false},
		{"7.3.2-one-byte-zero", []byte{0x00}, ws.StatusProtocolError, false},
		{"7.3.3-code-only", closeBody(1000, ""), ws.StatusNormalClosure, true},
		{"7.3.4-code-and-reason", closeBody(1000, "Hello World!"), ws.StatusNormalClosure, true},
		{"7.3.5-123-byte-reason", closeBody(1000, strings.Repeat("*", 123)), ws.StatusNormalClosure, true},
		{"123-byte-reason-multibyte", closeBody(1001, strings.Repeat("é", 61)+"!"), ws.StatusGoingAway, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if len(tc.body) > 125 {
				t.Fatalf("a %d-byte body", len(tc.body))
			}
			c := shared.open(t)
			c.send(closeWith(tc.body))
			c.expectCloseThen(tc.want, tc.clean)
		})
	}
}

// TestCloseInvalidCodes: §7.4: codes below 1000, 1004-1006 and 1015
// (reserved, or meaning "none" and "abnormal" locally, never sent), other
// unassigned codes below 3000, and codes from 5000 may not be sent: a
// close carrying one fails the connection with 1002, never an echo of it.
// Autobahn 7.9.1-7.9.9 as current releases number them (old reports
// number them otherwise); Autobahn accepts a 1002 or a dropped TCP, the
// contract here is 1002.
func TestCloseInvalidCodes(t *testing.T) {
	t.Parallel()
	autobahn := map[uint16]string{0: "7.9.1", 999: "7.9.2", 1004: "7.9.3", 1005: "7.9.4", 1006: "7.9.5", 1016: "7.9.6",
		1100: "7.9.7", 2000: "7.9.8", 2999: "7.9.9"}
	var cases []failCase
	for _, code := range []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		name := fmt.Sprintf("%d", code)
		if n, ok := autobahn[code]; ok {
			name = n + "-" + name
		}
		cases = append(cases, failCase{name: name, frames: []frame{closeWith(closeBody(code, ""))}, want: ws.StatusProtocolError})
		cases = append(cases, failCase{name: name + "-with-reason", frames: []frame{closeWith(closeBody(code, "reason"))}, want: ws.StatusProtocolError})
	}
	runFailCases(t, shared, cases)
}

// TestCloseReasonNotUTF8: §5.5.1, §8.1: the reason of a close is UTF-8; a
// close with a valid code and a reason that is not is answered with 1007.
// Autobahn 7.5.1.
func TestCloseReasonNotUTF8(t *testing.T) {
	t.Parallel()
	var cases []failCase
	for name, reason := range map[string]string{
		"7.5.1-surrogate":      "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
		"ff":                   "bye \xff",
		"truncated-code-point": "bye \xe2\x82",
		"overlong-slash":       "\xc0\xaf",
		"above-10ffff":         "\xf4\x90\x80\x80",
		"lone-continuation":    "\x80",
	} {
		for _, code := range []uint16{1000, 4000} {
			cases = append(cases, failCase{name: fmt.Sprintf("%s-%d", name, code), frames: []frame{closeWith(closeBody(code, reason))},
				want: ws.StatusInvalidFramePayloadData})
		}
	}
	runFailCases(t, shared, cases)
}

// TestCloseThenNothing: §5.5.1, §1.4: after a close frame the client sends
// nothing the server should act on, and the server, having answered it,
// sends nothing more: no reply, no pong, no second close. A message left
// unfinished by the close gets no reply either. Autobahn 7.1.1-7.1.5.
func TestCloseThenNothing(t *testing.T) {
	t.Parallel()
	bye := closeWith(closeBody(1000, "bye"))
	runFailCases(t, shared, []failCase{
		{name: "7.1.1-message-then-close", frames: []frame{text(scrape), bye}, replies: 1, want: ws.StatusNormalClosure},
		{name: "7.1.2-close-twice", frames: []frame{bye, bye}, want: ws.StatusNormalClosure},
		{name: "7.1.3-ping-after-close", frames: []frame{bye, ping([]byte("after close"))}, want: ws.StatusNormalClosure},
		{name: "7.1.4-message-after-close", frames: []frame{bye, text(scrape)}, want: ws.StatusNormalClosure},
		{name: "7.1.5-close-inside-a-message", frames: []frame{fragment(opText, scrape[:9], false), bye, fragment(opCont, scrape[9:], true)},
			want: ws.StatusNormalClosure},
		{name: "close-inside-a-message-code-4000", frames: []frame{fragment(opText, scrape[:9], false), closeWith(closeBody(4000, ""))},
			want: 4000},
		{name: "bad-frame-after-close", frames: []frame{bye, {fin: true, op: 3}}, want: ws.StatusNormalClosure},
	})
}
