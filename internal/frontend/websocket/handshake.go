package websocket

import (
	"bytes"
	"encoding/base64"
	"io"
	"strconv"

	"github.com/gobwas/ws"
	"github.com/trakx/trakx/internal/httpproto"
)

// The opening handshake (RFC 6455 section 4.2): gobwas/ws checks the
// request and answers it; trakx checks beforehand what gobwas/ws lets
// through, the key.

// handshake answers the upgrade request: the 101 to send, and true; or
// the error reply (400, with the reason), and false.
func (s *Server) handshake(request []byte) ([]byte, bool) {
	if !oneValidKey(request) {
		s.counters.BadRequest.Add(1)
		return badKey, false
	}
	var reply bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(request), &reply}
	if _, err := (ws.Upgrader{}).Upgrade(rw); err != nil {
		s.counters.BadRequest.Add(1)
		return reply.Bytes(), false // gobwas/ws has answered 400 with the reason
	}
	return reply.Bytes(), true
}

// sendUpgrade sends the handshake's 101, or keeps what the socket does not
// take for the loop to send; false if the socket failed.
func (c *conn) sendUpgrade(reply []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sendLocked(reply)
}

// badKey answers an upgrade whose key is missing, repeated or malformed.
var badKey = func() []byte {
	body := httpproto.AppendFailure(nil, "Sec-WebSocket-Key must be one base64-encoded 16-byte value")
	return append([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}()

// oneValidKey reports whether request's header has exactly one
// Sec-WebSocket-Key field, and its value is 16 bytes in base64 (RFC 6455
// sections 4.2.1 and 11.3.1): a list of keys, or two fields, is refused.
func oneValidKey(request []byte) bool {
	head, _, _ := bytes.Cut(request, []byte("\r\n\r\n"))
	var key []byte
	keys := 0
	for rest := head; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, value, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\r")), []byte(":"))
		if ok && bytes.EqualFold(name, []byte("Sec-WebSocket-Key")) {
			keys++
			key = bytes.Trim(value, " \t")
		}
	}
	if keys != 1 || len(key) != 24 {
		return false
	}
	var nonce [18]byte
	n, err := base64.StdEncoding.Strict().Decode(nonce[:], key)
	return err == nil && n == 16
}
