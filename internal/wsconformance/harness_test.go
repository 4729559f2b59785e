package wsconformance

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
)

// timeout bounds every wait of the suite: a read, a handshake, a dial.
const timeout = 5 * time.Second

// tracker is the WebSocket endpoint under test.
type tracker struct {
	addr string // host:port of the HTTP listener
	// maxMessage is its websocket.max_message_bytes.
	maxMessage int
	external   bool
	tls        bool // wss://: TLS over the connection (TRAKX_WS_TLS)
}

// overTLS: TRAKX_WS_TLS is set, and the suite speaks wss:// (the https
// frontend's WebSockets, served over a net.Conn rather than in a loop).
var overTLS = os.Getenv("TRAKX_WS_TLS") != ""

// shared is the tracker most tests use: started by TestMain, or named by
// TRAKX_WS_ADDR.
var shared tracker

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	if addr := os.Getenv("TRAKX_WS_ADDR"); addr != "" {
		shared = tracker{addr: addr, maxMessage: 64 << 10, external: true, tls: overTLS}
		if v := os.Getenv("TRAKX_WS_MAX_MESSAGE_BYTES"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1024 {
				fmt.Fprintf(os.Stderr, "TRAKX_WS_MAX_MESSAGE_BYTES=%q: want a number of bytes, at least 1024\n", v)
				return 2
			}
			shared.maxMessage = n
		}
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "wsconformance")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	d, tr, err := startDaemon(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the tracker:", err)
		return 2
	}
	defer d.Stop()
	shared = tr
	return m.Run()
}

// startDaemon runs a tracker on the built-in defaults, changed by edit:
// HTTP and WebSocket on 127.0.0.1 at a port of the kernel's choosing, UDP
// and stats off, the database in dir.
func startDaemon(dir string, edit func(*config.Config)) (*daemon.Daemon, tracker, error) {
	cfg := config.Default()
	cfg.UDP.Listen = []string{}
	cfg.HTTP.Listen = []string{"127.0.0.1:0"}
	cfg.HTTP.WebSocket = true
	cfg.Stats.Listen = ""
	cfg.Database.Path = dir + "/peers.db"
	if overTLS {
		cert, key, err := writeCertificate(dir)
		if err != nil {
			return nil, tracker{}, err
		}
		cfg.HTTPS.Listen, cfg.HTTPS.Cert, cfg.HTTPS.Key = []string{"127.0.0.1:0"}, cert, key
	}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, tracker{}, err
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := daemon.New(cfg, "", "wsconformance", log)
	if err := d.Start(); err != nil {
		return nil, tracker{}, err
	}
	if overTLS {
		return d, tracker{addr: d.HTTPSAddrs()[0].String(), maxMessage: cfg.WebSocket.MaxMessageBytes, tls: true}, nil
	}
	return d, tracker{addr: d.HTTPAddrs()[0].String(), maxMessage: cfg.WebSocket.MaxMessageBytes}, nil
}

// ownTracker starts a tracker of the test's own, configured by edit; it is
// skipped against an external tracker, whose configuration is not ours.
func ownTracker(t *testing.T, edit func(*config.Config)) tracker {
	t.Helper()
	if shared.external {
		t.Skip("needs a tracker configured by the test: skipped with TRAKX_WS_ADDR")
	}
	d, tr, err := startDaemon(t.TempDir(), edit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return tr
}

// ---- The opening handshake ----

// upgradeRequest is an opening handshake, header line by header line, so
// that a case can drop, change or repeat any of them.
type upgradeRequest struct {
	method, target, proto string
	headers               [][2]string
}

// validUpgrade is the handshake of RFC 6455 §4.1 for the announce path.
func validUpgrade(host, key string) upgradeRequest {
	return upgradeRequest{method: "GET", target: "/announce", proto: "HTTP/1.1", headers: [][2]string{
		{"Host", host},
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", key},
		{"Sec-WebSocket-Version", "13"},
	}}
}

// without drops every header line called name.
func (r upgradeRequest) without(name string) upgradeRequest {
	var h [][2]string
	for _, kv := range r.headers {
		if !strings.EqualFold(kv[0], name) {
			h = append(h, kv)
		}
	}
	r.headers = h
	return r
}

// set replaces the header lines called name by one with value.
func (r upgradeRequest) set(name, value string) upgradeRequest {
	return r.without(name).add(name, value)
}

// add appends a header line, whether or not one of that name is there.
func (r upgradeRequest) add(name, value string) upgradeRequest {
	r.headers = append(append([][2]string(nil), r.headers...), [2]string{name, value})
	return r
}

func (r upgradeRequest) bytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\r\n", r.method, r.target, r.proto)
	for _, kv := range r.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[0], kv[1])
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// newKey is a fresh Sec-WebSocket-Key: the base64 of 16 random bytes.
func newKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// acceptFor is the Sec-WebSocket-Accept a server owes key (§4.2.2 5.4).
func acceptFor(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// dial opens a TCP connection to the tracker, closed when the test ends.
func (tr tracker) dial(t testing.TB) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", tr.addr, timeout)
	if err != nil {
		t.Fatalf("dial %s: %v", tr.addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return tr.secure(t, nc)
}

// secure is nc, or a TLS client over it for wss://.
func (tr tracker) secure(t testing.TB, nc net.Conn) net.Conn {
	t.Helper()
	if !tr.tls {
		return nc
	}
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake with %s: %v", tr.addr, err)
	}
	tc.SetDeadline(time.Time{})
	return tc
}

// handshake sends req on a new connection and reads the response head; the
// reader holds whatever follows it.
func (tr tracker) handshake(t testing.TB, req upgradeRequest) (*http.Response, *conn) {
	t.Helper()
	return tr.handshakeOn(t, tr.dial(t), req)
}

func (tr tracker) handshakeOn(t testing.TB, nc net.Conn, req upgradeRequest) (*http.Response, *conn) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(req.bytes()); err != nil {
		t.Fatalf("writing the handshake: %v", err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: req.method})
	if err != nil {
		t.Fatalf("reading the handshake's response: %v", err)
	}
	nc.SetDeadline(time.Time{})
	return resp, &conn{t: t, nc: nc, br: br}
}

// open is a WebSocket connection after a valid handshake.
func (tr tracker) open(t testing.TB) *conn {
	t.Helper()
	return tr.openOn(t, tr.dial(t))
}

func (tr tracker) openOn(t testing.TB, nc net.Conn) *conn {
	t.Helper()
	key := newKey()
	resp, c := tr.handshakeOn(t, nc, validUpgrade(tr.addr, key))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != acceptFor(key) {
		t.Fatalf("upgrade: %s, Sec-WebSocket-Accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return c
}

// ---- Frames a client sends, built by hand ----

// Opcodes (§5.2), as bytes: a frame here may carry any of the 16.
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// frame is one client frame, well formed or not.
type frame struct {
	fin     bool
	rsv     byte // the three reserved bits, RSV1 the highest
	op      byte
	payload []byte
	// unmasked sends the payload in the clear with the MASK bit off.
	unmasked bool
	// lenBytes forces the extended length field: 2 (16-bit) or 8 (64-bit);
	// 0 takes the shortest encoding.
	lenBytes int
	// declared, when set, is the length the header states; only the header
	// (and masking key) is sent then, no payload.
	declared    uint64
	hasDeclared bool
	// zeroKey masks with the key 0 (legal: the payload goes as it is).
	zeroKey bool
}

func text(s string) frame         { return frame{fin: true, op: opText, payload: []byte(s)} }
func textBytes(b []byte) frame    { return frame{fin: true, op: opText, payload: b} }
func ping(p []byte) frame         { return frame{fin: true, op: opPing, payload: p} }
func pong(p []byte) frame         { return frame{fin: true, op: opPong, payload: p} }
func closeWith(body []byte) frame { return frame{fin: true, op: opClose, payload: body} }
func fragment(op byte, s string, fin bool) frame {
	return frame{fin: fin, op: op, payload: []byte(s)}
}

// closeBody is a close frame's body: code and reason (§5.5.1).
func closeBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func (f frame) encode() []byte {
	b0 := f.rsv<<4&0x70 | f.op&0x0f
	if f.fin {
		b0 |= 0x80
	}
	length := uint64(len(f.payload))
	if f.hasDeclared {
		length = f.declared
	}
	var mask byte = 0x80
	if f.unmasked {
		mask = 0
	}
	out := []byte{b0}
	switch {
	case f.lenBytes == 8 || (f.lenBytes == 0 && length > 0xffff):
		out = append(out, mask|127)
		out = binary.BigEndian.AppendUint64(out, length)
	case f.lenBytes == 2 || (f.lenBytes == 0 && length > 125):
		out = append(out, mask|126)
		out = binary.BigEndian.AppendUint16(out, uint16(length))
	default:
		out = append(out, mask|byte(length))
	}
	if f.unmasked {
		if !f.hasDeclared {
			out = append(out, f.payload...)
		}
		return out
	}
	var key [4]byte
	if !f.zeroKey {
		binary.LittleEndian.PutUint32(key[:], mrand.Uint32()|1)
	}
	out = append(out, key[:]...)
	if f.hasDeclared {
		return out
	}
	for i, c := range f.payload {
		out = append(out, c^key[i&3])
	}
	return out
}

func encode(frames ...frame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.encode()...)
	}
	return b
}

// ---- A connection after the handshake ----

// conn is the client side of a WebSocket connection.
type conn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// send writes frames in one write. A write error is only logged: a server
// that fails the connection may close it while the rest is on its way,
// and what the client reads next says what happened.
func (c *conn) send(frames ...frame) {
	c.t.Helper()
	c.write(encode(frames...))
}

func (c *conn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Logf("write: %v", err)
	}
}

// sendChopped writes the frames chunk bytes at a time, each chunk a write
// of its own.
func (c *conn) sendChopped(chunk int, frames ...frame) {
	c.t.Helper()
	b := encode(frames...)
	for len(b) > 0 {
		n := min(chunk, len(b))
		c.write(b[:n])
		b = b[n:]
	}
}

// serverFrame is a frame the server sent.
type serverFrame struct {
	ws.Header
	payload []byte
}

func (f serverFrame) String() string {
	p := f.payload
	if len(p) > 200 {
		p = p[:200]
	}
	return fmt.Sprintf("%s frame (fin %v, %d bytes) %q", opName(f.OpCode), f.Fin, len(f.payload), p)
}

func opName(op ws.OpCode) string {
	switch op {
	case ws.OpContinuation:
		return "continuation"
	case ws.OpText:
		return "text"
	case ws.OpBinary:
		return "binary"
	case ws.OpClose:
		return "close"
	case ws.OpPing:
		return "ping"
	case ws.OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode-%d", op)
}

// next reads the server's next frame, waiting up to the timeout, and checks
// what every server frame must be: unmasked, no reserved bit set (§5.1,
// §5.2).
func (c *conn) next() (serverFrame, error) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	h, err := ws.ReadHeader(c.br)
	if err != nil {
		return serverFrame{}, err
	}
	if h.Length < 0 || h.Length > 16<<20 {
		return serverFrame{}, fmt.Errorf("a server frame of %d bytes", h.Length)
	}
	f := serverFrame{Header: h, payload: make([]byte, h.Length)}
	if _, err := io.ReadFull(c.br, f.payload); err != nil {
		return serverFrame{}, err
	}
	if h.Masked {
		c.t.Errorf("the server sent a masked %s (§5.1: a server MUST NOT mask)", f)
		ws.Cipher(f.payload, h.Mask, 0)
	}
	if h.Rsv != 0 {
		c.t.Errorf("the server sent RSV bits %03b in a %s", h.Rsv, f)
	}
	return f, nil
}

// must is next, failing the test when no frame comes. It skips the
// server's own pings (keep-alives, §5.5.2): no case expects one.
func (c *conn) must() serverFrame {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("no frame from the server: %s", describe(err))
		}
		if f.OpCode != ws.OpPing {
			return f
		}
	}
}

func describe(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("nothing within %v", timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection ended (EOF)"
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset"
	}
	return err.Error()
}

// recv reads the next message (skipping the server's keep-alive pings);
// anything else fails the test.
func (c *conn) recv() []byte {
	c.t.Helper()
	var msg []byte
	for {
		f := c.must()
		switch f.OpCode {
		case ws.OpPing:
			continue
		case ws.OpText:
			if msg != nil {
				c.t.Fatalf("a text frame inside a fragmented message from the server")
			}
			msg = f.payload
		case ws.OpContinuation:
			if msg == nil {
				c.t.Fatalf("a continuation frame from the server continuing nothing")
			}
			msg = append(msg, f.payload...)
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(f.payload)
			c.t.Fatalf("closed with %d %q, want a message", code, reason)
		default:
			c.t.Fatalf("got a %s, want a message", f)
		}
		if f.Fin {
			if !utf8.Valid(msg) {
				c.t.Errorf("the server sent a text message that is not UTF-8: %q", msg)
			}
			return msg
		}
	}
}

// recvJSON reads the next message as a JSON object.
func (c *conn) recvJSON() map[string]any {
	c.t.Helper()
	msg := c.recv()
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		c.t.Fatalf("message %q: %v", msg, err)
	}
	return m
}

// expectScrapeReply reads the reply to a scrape.
func (c *conn) expectScrapeReply() {
	c.t.Helper()
	if m := c.recvJSON(); m["action"] != "scrape" || m["files"] == nil {
		c.t.Fatalf("got %v, want the reply to a scrape", m)
	}
}

// alive checks that the connection still answers: a scrape gets its reply.
func (c *conn) alive() {
	c.t.Helper()
	c.send(text(scrape))
	c.expectScrapeReply()
}

// expectClose reads the server's close frame, which must come next (the
// server's pings aside) and carry want; then the end of the stream, with
// nothing after the close frame.
func (c *conn) expectClose(want ws.StatusCode) {
	c.t.Helper()
	c.expectCloseThen(want, false)
}

// expectCleanClose is expectClose after a closing handshake the client
// began: the server has read everything, so its TCP ends in a FIN (EOF),
// not a reset.
func (c *conn) expectCleanClose(want ws.StatusCode) {
	c.t.Helper()
	c.expectCloseThen(want, true)
}

func (c *conn) expectCloseThen(want ws.StatusCode, clean bool) {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("no close frame (want %d): %s", want, describe(err))
		}
		switch f.OpCode {
		case ws.OpPing:
			continue
		case ws.OpClose:
			checkCloseFrame(c.t, f)
			if code, reason := ws.ParseCloseFrameData(f.payload); code != want {
				c.t.Errorf("closed with %d %q, want %d", code, reason, want)
			}
			c.expectEnd(clean)
			return
		default:
			c.t.Fatalf("got a %s, want a close frame with %d", f, want)
		}
	}
}

// checkCloseFrame checks a server close frame (§5.5.1, §7.4): a body of 0
// or at least 2 bytes, a code an endpoint may send, a UTF-8 reason.
func checkCloseFrame(t testing.TB, f serverFrame) {
	t.Helper()
	if !f.Fin {
		t.Errorf("a fragmented close frame from the server")
	}
	if len(f.payload) == 1 {
		t.Errorf("a close frame with a 1-byte body from the server")
		return
	}
	if len(f.payload) == 0 {
		return
	}
	code, reason := ws.ParseCloseFrameData(f.payload)
	if !sendable(uint16(code)) {
		t.Errorf("the server sent close code %d, which no endpoint may send (§7.4)", code)
	}
	if !utf8.ValidString(reason) {
		t.Errorf("the server's close reason is not UTF-8: %q", reason)
	}
}

// sendable reports whether an endpoint may put code in a close frame
// (§7.4.1, §7.4.2, and the codes IANA registered since: 1012-1014).
func sendable(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// expectEnd reads past the close frame: nothing more may come, and the
// server closes TCP. clean asks for a FIN (EOF) rather than a reset.
func (c *conn) expectEnd(clean bool) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	var buf [512]byte
	n, err := io.ReadAtLeast(c.br, buf[:], 1)
	switch {
	case n > 0:
		c.t.Errorf("the server sent %d bytes after its close frame: %q", n, buf[:n])
	case errors.Is(err, io.EOF):
	case errors.Is(err, syscall.ECONNRESET) && !clean:
	default:
		c.t.Errorf("after the close frame, want the TCP connection closed (EOF): %s", describe(err))
	}
}

// ---- Messages ----

// scrape is the shortest request with a reply of its own.
const scrape = `{"action":"scrape"}`

// paddedScrape is a scrape of exactly n bytes (n >= 29), padded with a
// member the tracker ignores.
func paddedScrape(n int) string {
	const head, tail = `{"action":"scrape","pad":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// id is a random 20-character binary string of the protocol (info_hash,
// peer_id, offer_id), of letters and digits so that it needs no escape.
func id() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 20)
	for i := range b {
		b[i] = alphabet[mrand.IntN(len(alphabet))]
	}
	return string(b)
}

// offer is one WebRTC offer of an announce; sdp goes into the JSON as it
// is, unescaped, so that a case can put any bytes there.
type offer struct {
	id  string
	sdp []byte
}

// announce composes an announce as WebTorrent sends it.
func announce(infoHash, peerID string, offers ...offer) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"action":"announce","info_hash":"%s","peer_id":"%s","numwant":%d,"uploaded":0,"downloaded":0,"left":0`,
		infoHash, peerID, len(offers))
	if len(offers) > 0 {
		b.WriteString(`,"offers":[`)
		for i, o := range offers {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"offer_id":"%s","offer":{"type":"offer","sdp":"`, o.id)
			b.Write(o.sdp)
			b.WriteString(`"}}`)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes()
}

// expectAnnounceReply reads the reply to an announce for infoHash.
func (c *conn) expectAnnounceReply(infoHash string) map[string]any {
	c.t.Helper()
	m := c.recvJSON()
	if m["action"] != "announce" || m["info_hash"] != infoHash || m["failure reason"] != nil || m["interval"] == nil {
		c.t.Fatalf("got %v, want the reply to an announce for %q", m, infoHash)
	}
	return m
}

// ---- Table runners ----

// failCase is a sequence of frames after which the server must fail the
// connection with a close code: after answering the first replies scrapes
// of the sequence, then pongs pings, and nothing else.
type failCase struct {
	name    string
	frames  []frame
	replies int
	pongs   int
	want    ws.StatusCode
}

// runFailCases runs each case on a connection of its own, in parallel.
func runFailCases(t *testing.T, tr tracker, cases []failCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tr.open(t)
			c.send(tc.frames...)
			for range tc.replies {
				c.expectScrapeReply()
			}
			for range tc.pongs {
				if f := c.must(); f.OpCode != ws.OpPong {
					t.Fatalf("got a %s, want a pong", f)
				}
			}
			c.expectClose(tc.want)
		})
	}
}

// okCase is a sequence of frames that makes one scrape, which must be
// answered; the connection then still works.
type okCase struct {
	name   string
	frames []frame
}

func runOKCases(t *testing.T, tr tracker, cases []okCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tr.open(t)
			c.send(tc.frames...)
			c.expectScrapeReply()
			c.alive()
		})
	}
}
