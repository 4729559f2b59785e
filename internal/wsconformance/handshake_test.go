package wsconformance

import (
	"bufio"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// RFC 6455 §4: the opening handshake.

// hasToken reports whether a comma-separated header value lists token,
// without case (§4.2.2 5.2 and 5.3: "Upgrade: websocket", "Connection:
// Upgrade").
func hasToken(value, token string) bool {
	for _, item := range strings.Split(value, ",") {
		if strings.EqualFold(strings.TrimSpace(item), token) {
			return true
		}
	}
	return false
}

// TestHandshakeAccepted: §4.2.2. A valid upgrade gets 101 Switching
// Protocols, Upgrade: websocket, Connection: Upgrade and the
// Sec-WebSocket-Accept computed from the key; the connection then speaks
// WebSocket. The key of §1.3's example has a known answer.
func TestHandshakeAccepted(t *testing.T) {
	t.Parallel()
	for name, key := range map[string]string{
		"rfc-example": "dGhlIHNhbXBsZSBub25jZQ==", // accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
		"random":      newKey(),
		"all-zero":    base64.StdEncoding.EncodeToString(make([]byte, 16)),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := acceptFor(key)
			if key == "dGhlIHNhbXBsZSBub25jZQ==" && want != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Fatalf("the suite computes %q for the RFC's example key", want)
			}
			resp, c := shared.handshake(t, validUpgrade(shared.addr, key))
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %s, want 101", resp.Status)
			}
			if got := resp.Header.Get("Sec-WebSocket-Accept"); got != want {
				t.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
			}
			if got := resp.Header.Values("Sec-WebSocket-Accept"); len(got) != 1 {
				t.Errorf("Sec-WebSocket-Accept sent %d times", len(got))
			}
			if got := resp.Header.Get("Upgrade"); !strings.EqualFold(got, "websocket") {
				t.Errorf("Upgrade: %q, want websocket", got)
			}
			if got := resp.Header.Get("Connection"); !hasToken(got, "upgrade") {
				t.Errorf("Connection: %q, want Upgrade", got)
			}
			// No extension or subprotocol was offered, so none is chosen.
			for _, h := range []string{"Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol"} {
				if got := resp.Header.Get(h); got != "" {
					t.Errorf("%s: %q, though the client offered none", h, got)
				}
			}
			c.alive()
		})
	}
}

// TestHandshakeHeaderCase: §4.2.1, RFC 9110 §5.1. Header names are not
// case-sensitive, nor are the Upgrade and Connection tokens; Connection may
// list other options beside Upgrade (as Firefox sends "keep-alive, Upgrade").
func TestHandshakeHeaderCase(t *testing.T) {
	t.Parallel()
	key := newKey()
	req := upgradeRequest{method: "GET", target: "/announce", proto: "HTTP/1.1", headers: [][2]string{
		{"host", shared.addr},
		{"UPGRADE", "WebSocket"},
		{"connection", "keep-alive, upgrade"},
		{"sec-websocket-key", key},
		{"SEC-WEBSOCKET-VERSION", "13"},
	}}
	resp, c := shared.handshake(t, req)
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != acceptFor(key) {
		t.Fatalf("status %s, Sec-WebSocket-Accept %q; want 101 and %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(key))
	}
	c.alive()
}

// TestHandshakeBadKey: §4.2.1 5 and §11.3.1: Sec-WebSocket-Key is the
// base64 of exactly 16 bytes, sent once. Anything else is a bad request.
func TestHandshakeBadKey(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	// 16 bytes whose standard encoding has '+' and '/', in the URL-safe
	// alphabet instead: 24 characters, but not base64.
	urlSafe := base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb})
	if !strings.ContainsAny(urlSafe, "-_") || len(urlSafe) != 24 {
		t.Fatalf("the URL-safe key %q is not what the case needs", urlSafe)
	}
	key := newKey()
	valid := validUpgrade(shared.addr, key)
	for _, tc := range []struct {
		name string
		req  upgradeRequest
	}{
		{"short", valid.set("Sec-WebSocket-Key", "abc")},
		{"empty", valid.set("Sec-WebSocket-Key", "")},
		{"15-bytes", valid.set("Sec-WebSocket-Key", b64(15))}, // 20 characters
		{"17-bytes", valid.set("Sec-WebSocket-Key", b64(17))}, // 24 characters, as a good key
		{"32-bytes", valid.set("Sec-WebSocket-Key", b64(32))},
		{"16-bytes-unpadded", valid.set("Sec-WebSocket-Key", strings.TrimRight(b64(16), "="))},
		{"not-base64", valid.set("Sec-WebSocket-Key", strings.Repeat("!", 22)+"==")},
		{"url-safe-alphabet", valid.set("Sec-WebSocket-Key", urlSafe)},
		{"two-lines", valid.add("Sec-WebSocket-Key", newKey())},
		{"two-lines-same", valid.add("Sec-WebSocket-Key", key)},
		{"comma-list", valid.set("Sec-WebSocket-Key", newKey()+", "+newKey())},
		{"missing", valid.without("Sec-WebSocket-Key")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, _ := shared.handshake(t, tc.req)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %s, want 400 Bad Request", resp.Status)
			}
		})
	}
}

// TestHandshakeVersion: §4.2.2 4 and §4.4: a version the server does not
// speak gets 426 Upgrade Required and "Sec-WebSocket-Version: 13". A
// handshake with no version at all is not one (§4.2.1 6): 400 is as right
// as 426 then, and both are accepted, 426 with the header.
func TestHandshakeVersion(t *testing.T) {
	t.Parallel()
	valid := validUpgrade(shared.addr, newKey())
	for _, tc := range []struct {
		name    string
		req     upgradeRequest
		missing bool
	}{
		{"draft-7", valid.set("Sec-WebSocket-Version", "7"), false},
		{"draft-8", valid.set("Sec-WebSocket-Version", "8"), false},
		{"12", valid.set("Sec-WebSocket-Version", "12"), false},
		{"14", valid.set("Sec-WebSocket-Version", "14"), false},
		{"255", valid.set("Sec-WebSocket-Version", "255"), false},
		{"missing", valid.without("Sec-WebSocket-Version"), true},
		{"empty", valid.set("Sec-WebSocket-Version", ""), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, _ := shared.handshake(t, tc.req)
			switch {
			case resp.StatusCode == http.StatusUpgradeRequired:
				if got := resp.Header.Values("Sec-WebSocket-Version"); len(got) != 1 || got[0] != "13" {
					t.Errorf("426 with Sec-WebSocket-Version %q, want exactly 13", got)
				}
			case tc.missing && resp.StatusCode == http.StatusBadRequest:
			case tc.missing:
				t.Errorf("status %s, want 400 or 426", resp.Status)
			default:
				t.Errorf("status %s, want 426 Upgrade Required", resp.Status)
			}
		})
	}
}

// TestHandshakeMethod: §4.2.1 1: the handshake is a GET. Any other method
// asking for an upgrade of the announce path gets 405 Method Not Allowed.
func TestHandshakeMethod(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			req := validUpgrade(shared.addr, newKey())
			req.method = method
			resp, _ := shared.handshake(t, req)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("status %s, want 405 Method Not Allowed", resp.Status)
			}
		})
	}
}

// TestHandshakeMissingHeaders: §4.2.1 2-4: Host, and Connection listing
// Upgrade, are required; without them there is no upgrade (400). Neither
// is there over HTTP/1.0 (§4.2.1 1: HTTP/1.1 or higher): the tracker may
// refuse it or serve it as the plain HTTP request it also is (RFC 9110
// §7.8: a server may ignore Upgrade), but never switch protocols.
func TestHandshakeMissingHeaders(t *testing.T) {
	t.Parallel()
	valid := validUpgrade(shared.addr, newKey())
	http10 := valid
	http10.proto = "HTTP/1.0"
	for _, tc := range []struct {
		name string
		req  upgradeRequest
		want func(int) bool
		says string
	}{
		{"no-host", valid.without("Host"), is(400), "400"},
		{"no-connection", valid.without("Connection"), is(400), "400"},
		{"connection-keep-alive", valid.set("Connection", "keep-alive"), is(400), "400"},
		{"http-1.0", http10, func(s int) bool { return s != http.StatusSwitchingProtocols }, "anything but 101"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, _ := shared.handshake(t, tc.req)
			if !tc.want(resp.StatusCode) {
				t.Errorf("status %s, want %s", resp.Status, tc.says)
			}
		})
	}
}

func is(status int) func(int) bool { return func(s int) bool { return s == status } }

// TestHandshakeFramesBeforeTheResponse: §4.1: a client must not send
// frames before it has the 101. Frames in the very packet of the upgrade
// request would otherwise be lost, and the stream read from the middle of
// one; the upgrade is refused with 400 instead.
func TestHandshakeFramesBeforeTheResponse(t *testing.T) {
	t.Parallel()
	nc := shared.dial(t)
	nc.SetDeadline(time.Now().Add(timeout))
	packet := append(validUpgrade(shared.addr, newKey()).bytes(), encode(text(scrape))...)
	if _, err := nc.Write(packet); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %s, want 400 Bad Request", resp.Status)
	}
}
