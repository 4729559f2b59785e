package websocket

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"testing"

	"github.com/gobwas/ws"
)

// TestCloseReply: the code a close frame is answered with (RFC 6455
// section 7.4), and whether the frame was valid.
func TestCloseReply(t *testing.T) {
	body := func(code uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, code), reason...)
	}
	for _, tc := range []struct {
		body  []byte
		code  ws.StatusCode
		valid bool
	}{
		{nil, 1000, true},
		{[]byte{3}, 1002, false},
		{body(1000, "bye"), 1000, true},
		{body(1001, ""), 1001, true},
		{body(1003, ""), 1003, true},
		{body(1007, ""), 1007, true},
		{body(1011, ""), 1011, true},
		{body(1014, ""), 1014, true},
		{body(3000, ""), 3000, true},
		{body(4999, "é"), 4999, true},
		{body(0, ""), 1002, false},
		{body(999, ""), 1002, false},
		{body(1004, ""), 1002, false},
		{body(1005, ""), 1002, false},
		{body(1006, ""), 1002, false},
		{body(1015, ""), 1002, false},
		{body(1016, ""), 1002, false},
		{body(2999, ""), 1002, false},
		{body(5000, ""), 1002, false},
		{body(65535, ""), 1002, false},
		{body(1000, "\xff"), 1007, false},
		{body(1000, "\xce"), 1007, false}, // a code point cut short
	} {
		code, valid := closeReply(tc.body)
		if code != tc.code || valid != tc.valid {
			t.Errorf("close body % x: answered %d (valid %v), want %d (%v)", tc.body, code, valid, tc.code, tc.valid)
		}
		if code == 1005 || code == 1006 || code == 1015 {
			t.Errorf("close body % x: answered with %d, which must never be sent", tc.body, code)
		}
	}
}

// FuzzCloseReply: whatever a close frame holds, the answer's code is one
// an endpoint may send, and a valid frame is answered with its own code.
func FuzzCloseReply(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03, 0xe8, 'o', 'k'})
	f.Add([]byte{0x03, 0xed})
	f.Fuzz(func(t *testing.T, body []byte) {
		code, valid := closeReply(body)
		if !sendableCloseCode(code) {
			t.Fatalf("% x: answered with %d", body, code)
		}
		if valid && len(body) >= 2 && code != ws.StatusCode(binary.BigEndian.Uint16(body)) {
			t.Fatalf("% x: valid, and answered with %d", body, code)
		}
	})
}

func upgradeRequest(keyLines ...string) []byte {
	r := "GET /announce HTTP/1.1\r\nHost: tracker\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
	for _, l := range keyLines {
		r += l + "\r\n"
	}
	return []byte(r + "\r\n")
}

// TestOneValidKey: exactly one Sec-WebSocket-Key, of 16 bytes in base64.
func TestOneValidKey(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		lines []string
		ok    bool
	}{
		{[]string{"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}, true}, // RFC 6455's own example
		{[]string{"sec-websocket-key:" + good + " "}, true},
		{nil, false},
		{[]string{"Sec-WebSocket-Key: "}, false},
		{[]string{"Sec-WebSocket-Key: abc"}, false},
		{[]string{"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(make([]byte, 15))}, false},
		{[]string{"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(make([]byte, 17))}, false},
		{[]string{"Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="}, false},
		{[]string{"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR=="}, false}, // stray bits in the padding
		{[]string{"Sec-WebSocket-Key: " + good, "Sec-WebSocket-Key: " + good}, false},
		{[]string{"Sec-WebSocket-Key: " + good + ", " + good}, false},
	} {
		if got := oneValidKey(upgradeRequest(tc.lines...)); got != tc.ok {
			t.Errorf("%q: %v, want %v", tc.lines, got, tc.ok)
		}
	}
}

// FuzzOneValidKey checks the key against net/http's reading of the same
// request as an oracle: one field, whose value decodes to 16 bytes.
func FuzzOneValidKey(f *testing.F) {
	f.Add("dGhlIHNhbXBsZSBub25jZQ==", "")
	f.Add("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ==")
	f.Add("abc", "")
	f.Fuzz(func(t *testing.T, key1, key2 string) {
		lines := []string{"Sec-WebSocket-Key: " + key1}
		if key2 != "" {
			lines = append(lines, "Sec-WebSocket-Key: "+key2)
		}
		request := upgradeRequest(lines...)
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(request)))
		if err != nil {
			return // not a request the HTTP frontend would have handed over
		}
		want := false
		if keys := r.Header.Values("Sec-WebSocket-Key"); len(keys) == 1 {
			nonce, err := base64.StdEncoding.Strict().DecodeString(keys[0])
			want = err == nil && len(nonce) == 16
		}
		if got := oneValidKey(request); got != want {
			t.Fatalf("%q: %v, net/http and encoding/base64 say %v", lines, got, want)
		}
	})
}

// FuzzParseHeader checks the frame header reader against gobwas/ws's.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4})
	f.Add([]byte{0x81, 0xfe, 0x01, 0x00, 1, 2, 3, 4})
	f.Add([]byte{0x81, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x70, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, size, status := parseHeader(b)
		rd := bytes.NewReader(b)
		want, err := ws.ReadHeader(rd)
		switch status {
		case headerIncomplete:
			if err == nil {
				t.Fatalf("% x: incomplete, gobwas/ws read %+v", b, want)
			}
		case headerBadLength: // refused before the mask is in
			_, err := ws.ReadHeader(bytes.NewReader(append(b[:10:10], 0, 0, 0, 0)))
			if err != ws.ErrHeaderLengthMSB {
				t.Fatalf("% x: bad length, gobwas/ws: %v", b, err)
			}
		default:
			if err != nil || h != want {
				t.Fatalf("% x: %+v (%d bytes), gobwas/ws %+v %v", b, h, size, want, err)
			}
			if read := len(b) - rd.Len(); size != read {
				t.Fatalf("% x: %d bytes, gobwas/ws read %d", b, size, read)
			}
		}
	})
}
