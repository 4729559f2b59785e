package wsconformance

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/trakx/trakx/internal/config"
)

// The tracker's own limits, which RFC 6455 leaves to the server (§10.4:
// "implementations SHOULD impose limits on frame sizes and the total
// message size"). Autobahn chapter 9 measures rather than limits; its
// largest messages are over any limit a tracker needs.

// TestLimitMessageSize: a message of exactly websocket.max_message_bytes is
// answered; one byte more fails the connection with 1009, whether it comes
// in one frame or is assembled from fragments each under the limit.
func TestLimitMessageSize(t *testing.T) {
	t.Parallel()
	messageSizeCases(t, shared)
}

// TestLimitConfiguredMessageSize: websocket.max_message_bytes is the
// configured one, not a built-in figure.
func TestLimitConfiguredMessageSize(t *testing.T) {
	t.Parallel()
	tr := ownTracker(t, func(c *config.Config) { c.WebSocket.MaxMessageBytes = 2048 })
	messageSizeCases(t, tr)
	// A 16-bit length over the limit is refused at its header, too.
	runFailCases(t, tr, []failCase{{name: "declared-16-bit", frames: []frame{{fin: true, op: opText, declared: 2049, hasDeclared: true}},
		want: ws.StatusMessageTooBig}})
}

func messageSizeCases(t *testing.T, tr tracker) {
	max := tr.maxMessage
	half := max / 2
	runOKCases(t, tr, []okCase{
		{"exactly-max", []frame{text(paddedScrape(max))}},
		{"exactly-max-in-fragments", split(paddedScrape(max), half)},
		{"exactly-max-in-many-fragments", split(paddedScrape(max), seq(1, 63)...)},
	})
	over := paddedScrape(max + 1)
	runFailCases(t, tr, []failCase{
		{name: "max+1", frames: []frame{text(over)}, want: ws.StatusMessageTooBig},
		{name: "max+1-in-two-fragments", frames: split(over, half), want: ws.StatusMessageTooBig},
		{name: "max+1-then-an-empty-final-fragment", frames: []frame{fragment(opText, over[:half], false), fragment(opCont, over[half:], false),
			fragment(opCont, "", true)}, want: ws.StatusMessageTooBig},
		{name: "over-max-before-the-last-fragment", frames: []frame{fragment(opText, over[:half], false), fragment(opCont, over[half:2*half], false),
			fragment(opCont, strings.Repeat(" ", half), false)}, want: ws.StatusMessageTooBig},
		{name: "after-a-good-message", frames: []frame{text(scrape), text(over)}, replies: 1, want: ws.StatusMessageTooBig},
	})
}

// TestLimitSwarmsPerConnection: one connection may be a peer of at most
// 200 swarms; an announce to one more gets the failure "too many torrents
// on one connection", and the connection stays open and serves the swarms
// it is in. Another connection is not concerned.
func TestLimitSwarmsPerConnection(t *testing.T) {
	t.Parallel()
	const limit = 200
	c, peer := shared.open(t), id()
	var frames []frame
	var hashes []string
	for range limit {
		h := id()
		hashes = append(hashes, h)
		frames = append(frames, textBytes(announce(h, peer)))
	}
	c.send(frames...)
	for _, h := range hashes {
		c.expectAnnounceReply(h)
	}
	extra := id()
	c.send(textBytes(announce(extra, peer)))
	if m := c.recvJSON(); m["failure reason"] != "too many torrents on one connection" {
		t.Fatalf("the announce to swarm %d got %v, want the failure \"too many torrents on one connection\"", limit+1, m)
	}
	c.send(textBytes(announce(hashes[0], peer)), textBytes(announce(hashes[limit-1], peer)))
	c.expectAnnounceReply(hashes[0])
	c.expectAnnounceReply(hashes[limit-1])
	c.alive()

	other := shared.open(t)
	other.send(textBytes(announce(extra, id())))
	other.expectAnnounceReply(extra)
}

// maxOwed is what a client that does not read may be owed before the
// tracker gives up on it.
const maxOwed = 256 << 10

// TestLimitSlowReader: a client that stops reading while offers are
// relayed to it is disconnected once it is owed more than 256 KiB; the
// other peers of its swarm, and the one offering, are served all along.
// Enough is sent that the kernel's buffers (the tracker's send buffer at
// its largest, net.ipv4.tcp_wmem's maximum, and the slow client's receive
// buffer, made small) cannot hold it besides the 256 KiB.
func TestLimitSlowReader(t *testing.T) {
	t.Parallel()
	h := id()
	slowConn := shared.secure(t, dialSmallReceiveBuffer(t, shared.addr))
	slow, slowID := shared.openOn(t, slowConn), id()
	slow.send(textBytes(announce(h, slowID)))
	slow.expectAnnounceReply(h)
	reader, readerID := shared.open(t), id()
	reader.send(textBytes(announce(h, readerID)))
	reader.expectAnnounceReply(h)

	// Offers of about 30 kB, two a round: one for each of the two peers.
	sdpSize := min(30000, (shared.maxMessage-600)/2)
	sdp := bytes.Repeat([]byte("a"), sdpSize)
	total := maxOwed + sendBufferMax() + 1<<20
	rounds := total/sdpSize + 1
	offerer, offererID := shared.open(t), id()
	for round := range rounds {
		offers := []offer{{id: id(), sdp: sdp}, {id: id(), sdp: sdp}}
		offerer.send(textBytes(announce(h, offererID, offers...)))
		offerer.expectAnnounceReply(h)
		m := reader.recvJSON()
		if m["peer_id"] != offererID || (m["offer_id"] != offers[0].id && m["offer_id"] != offers[1].id) {
			t.Fatalf("round %d: the reading peer got %.200v, want an offer", round, m)
		}
	}

	// The slow client now reads: what the kernel held, then the end.
	deadline := time.Now().Add(timeout)
	slowConn.SetReadDeadline(deadline)
	n, err := io.Copy(io.Discard, slow.br)
	var ne net.Error
	switch {
	// Over TLS, a connection shut without a close_notify ends so.
	case err == nil, errors.Is(err, syscall.ECONNRESET), shared.tls && errors.Is(err, io.ErrUnexpectedEOF):
		t.Logf("the slow client read %d bytes, then the end of the connection", n)
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("the slow client is still connected, owed %d bytes of offers (it read %d)", rounds*sdpSize, n)
	default:
		t.Fatalf("the slow client: %v", err)
	}
	reader.alive()
	offerer.alive()
	// The slow client leaves the swarm (soon: its end and its leaving need
	// not be one step), and the others stay.
	deadline = time.Now().Add(timeout)
	for {
		offerer.send(textBytes(announce(h, offererID)))
		m := offerer.expectAnnounceReply(h)
		if m["complete"] == 2.0 && m["incomplete"] == 0.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the swarm after the slow client's end: %v, want the 2 other peers", m)
		}
	}
}

// dialSmallReceiveBuffer connects with a receive buffer of a few KiB, set
// before the connection so that the window it offers is small too.
func dialSmallReceiveBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: timeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); cerr != nil {
			return cerr
		}
		return err
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// sendBufferMax is the most a TCP send buffer grows to here
// (net.ipv4.tcp_wmem's third figure), 4 MiB if unknown.
func sendBufferMax() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		return 4 << 20
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 4 << 20
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return 4 << 20
	}
	return n
}

// TestLimitUnfinishedMessage: a fragmented message, or a frame, not
// finished within http.read_timeout is cut off with 1008, however busy the
// client keeps the connection meanwhile (pongs here): an open message
// holds a buffer of up to max_message_bytes. Frames that are finished are
// never cut off, however they are split across reads.
func TestLimitUnfinishedMessage(t *testing.T) {
	t.Parallel()
	tr := ownTracker(t, func(c *config.Config) { c.HTTP.ReadTimeout.Duration = time.Second })
	held := tr.open(t)
	held.send(fragment(opText, scrape[:10], false))
	// Both connections keep sending: pongs, each cut across two writes on
	// the busy one, so that none of its frames is unfinished for long.
	busy := tr.open(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		b := encode(pong([]byte("keep")))
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			busy.nc.Write(b[:3])
			held.nc.Write(encode(pong([]byte("busy")))) // fails once it is closed: no matter
			busy.nc.Write(b[3:])
		}
	}()
	held.expectClose(ws.StatusPolicyViolation)
	close(stop)
	<-done
	busy.send(text(scrape))
	busy.expectScrapeReply()
}

// TestLimitControlFramesInsideAFullMessage: §5.4: control frames in the
// middle of a fragmented message are not part of it: a ping inside a
// message one byte short of max_message_bytes is answered, and the message
// is still taken whole.
func TestLimitControlFramesInsideAFullMessage(t *testing.T) {
	t.Parallel()
	msg := paddedScrape(shared.maxMessage)
	c := shared.open(t)
	c.send(fragment(opText, msg[:len(msg)-1], false), ping([]byte("inside")), fragment(opCont, msg[len(msg)-1:], true))
	if f := c.must(); f.OpCode != ws.OpPong {
		t.Fatalf("got a %s, want the pong", f)
	}
	c.expectScrapeReply()
}
