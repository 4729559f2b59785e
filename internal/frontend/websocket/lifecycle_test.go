package websocket

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// announceJSON is a WebTorrent announce of peer in swarm h, with offers.
func announceJSON(h bittorrent.InfoHash, peer bittorrent.PeerID, offers int) []byte {
	m := map[string]any{"action": "announce", "info_hash": latin1(h[:]), "peer_id": latin1(peer[:]),
		"numwant": offers, "uploaded": 0, "downloaded": 0, "left": 1}
	var list []any
	for i := range offers {
		id := fmt.Sprintf("offer%015d", i)
		list = append(list, map[string]any{"offer_id": id, "offer": map[string]any{"type": "offer", "sdp": strings.Repeat("v=0 ", 64)}})
	}
	if offers > 0 {
		m["offers"] = list
	}
	b, _ := json.Marshal(m)
	return b
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func peerID(n int) (id bittorrent.PeerID) {
	copy(id[:], fmt.Sprintf("-WW0001-%012d", n))
	return id
}

// TestNoGhostPeerWhenShutMidAnnounce: a connection shut from another
// goroutine (here the keep-alive tick) while its loop is inside an
// announce leaves no peer behind, and its peer id is free at once for a
// new connection (issue 22, defect 1: the announce used to add the peer
// back after the connection had left its swarms).
func TestNoGhostPeerWhenShutMidAnnounce(t *testing.T) {
	opts := options()
	opts.PingInterval = time.Hour // no tick but the test's
	s, addr := serve(t, opts)
	h, id := tt.Hash("ghost"), peerID(1)

	c, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release := s.Stall(&h)
	if err := wsutil.WriteClientText(c, announceJSON(h, id, 0)); err != nil {
		t.Fatal(err)
	}
	// The loop is inside the announce, waiting for the swarm's lock.
	tt.WaitFor(t, "the loop to block in the announce", func() bool { return s.Stalled(200 * time.Millisecond) })
	ticked := make(chan struct{})
	go func() { s.keepAlive(time.Now().Add(3 * opts.PingInterval)); close(ticked) }() // everyone is silent, three intervals on
	// Give the tick every chance to finish before the announce does, as
	// it did when the defect struck.
	select {
	case <-ticked:
	case <-time.After(100 * time.Millisecond):
	}
	release()
	<-ticked
	tt.WaitFor(t, "the connection to end", func() bool { return s.counters.Connections.Load() == 0 })
	tt.WaitFor(t, "the loops to go idle", func() bool { return !s.Stalled(0) })
	if st := s.swarms.Stats(); st != (struct{ Torrents, Seeders, Leechers int }{}) {
		t.Fatalf("after the connection ended, the swarms hold %+v", st)
	}
	// Its peer id is free for a new connection.
	c2, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	wsutil.WriteClientText(c2, announceJSON(h, id, 0))
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := wsutil.ReadServerText(c2)
	if err != nil || bytes.Contains(reply, []byte("failure reason")) {
		t.Fatalf("the peer id's new connection: %q %v", reply, err)
	}
}

// TestWedgedLoopIsStalled: a loop stuck inside a request counts as
// stalled for the watchdog once it has been for longer than the limit,
// and not once it is free; idle loops never are.
func TestWedgedLoopIsStalled(t *testing.T) {
	opts := options()
	opts.PingInterval = time.Hour
	s, addr := serve(t, opts)
	if s.Stalled(time.Millisecond) {
		t.Fatal("an idle server is stalled")
	}
	h := tt.Hash("wedge")
	c, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release := s.Stall(&h)
	wsutil.WriteClientText(c, announceJSON(h, peerID(1), 0))
	tt.WaitFor(t, "the wedged loop to count as stalled", func() bool { return s.Stalled(50 * time.Millisecond) })
	release()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := wsutil.ReadServerText(c); err != nil {
		t.Fatalf("the freed loop did not answer: %v", err)
	}
	tt.WaitFor(t, "the freed loop to stop counting as stalled", func() bool { return !s.Stalled(50 * time.Millisecond) })
}

// TestStressConnectionsEndInReference opens and ends connections in every
// way at once, while relays run between them and keep-alive ticks shut the
// silent: clients that read, clients that never read (and are shut by the
// relays that find them owing too much), clients that vanish with a reset,
// and clients that close properly. Every client that reads gets exactly
// its own replies, never bytes meant for another connection; and once all
// have gone the tracker is back to the exact start: no connection, no
// peer, and not one descriptor more than before (issue 22, defect 2: a
// loop could read a descriptor another goroutine had closed, whose number
// a new connection already had).
func TestStressConnectionsEndInReference(t *testing.T) {
	before := tt.OpenDescriptors(t)
	opts := options()
	opts.MaxConnections = 1000
	opts.MaxMessageBytes = 64 << 10
	// Ticks often enough to ping while relays run, not so often that a
	// client the race detector slows looks silent: at 100 ms (dead after
	// 250 ms of silence) a machine busy with other tests as well cut off
	// clients waiting for their replies.
	opts.PingInterval = 250 * time.Millisecond
	opts.ReadTimeout = 5 * time.Second
	s, addr, stop := start(t, opts)

	const clients, rounds = 24, 6
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 22))
			for round := range rounds {
				if err := stressClient(addr, i, round, rng.IntN(4)); err != nil {
					errs <- fmt.Errorf("client %d round %d: %w", i, round, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tt.WaitFor(t, "every connection to end", func() bool {
		return s.counters.Connections.Load() == 0 && s.opts.Open.Load() == 0
	})
	if st := s.swarms.Stats(); st.Seeders+st.Leechers+st.Torrents != 0 {
		t.Errorf("no connection left, and the swarms hold %+v", st)
	}
	stop()
	if after := tt.OpenDescriptors(t); after != before {
		t.Errorf("%d descriptors open before the server, %d after it", before, after)
	}
}

// stressClient is one client's life, in one of four ways.
func stressClient(addr string, i, round, way int) error {
	c, _, _, err := ws.Dialer{Timeout: 5 * time.Second}.Dial(context.Background(), "ws://"+addr+"/announce")
	if err != nil {
		return err
	}
	defer c.Close()
	h := tt.Hash(fmt.Sprintf("stress %d", round%2))
	id := peerID(i*100 + round)
	const announces = 5
	switch way {
	case 0: // reads every reply, and says goodbye properly
		for range announces {
			if err := wsutil.WriteClientText(c, announceJSON(h, id, 3)); err != nil {
				return err
			}
			if err := readOwnReply(c, h); err != nil {
				return err
			}
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		ws.WriteFrame(c, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
		return expectClose(c, ws.StatusNormalClosure)
	case 1: // announces with offers and never reads: relays fill it up
		c.(*net.TCPConn).SetReadBuffer(1024)
		for range announces {
			wsutil.WriteClientText(c, announceJSON(h, id, 10))
		}
	case 2: // vanishes with a reset
		wsutil.WriteClientText(c, announceJSON(h, id, 2))
		c.(*net.TCPConn).SetLinger(0)
	default: // reads its reply, then just closes
		wsutil.WriteClientText(c, announceJSON(h, id, 1))
		return readOwnReply(c, h)
	}
	return nil
}

// readOwnReply reads messages until the announce reply for h; every one
// must be a well-formed message of the protocol (a reply about h, or an
// offer relayed from another peer of h), answering pings on the way.
func readOwnReply(c net.Conn, h bittorrent.InfoHash) error {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := tt.ReadWSFrame(c)
		if err != nil {
			return fmt.Errorf("waiting for the announce reply: %w", err)
		}
		switch f.Header.OpCode {
		case ws.OpPing:
			ws.WriteFrame(c, ws.MaskFrame(ws.NewPongFrame(f.Payload)))
			continue
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(f.Payload)
			return fmt.Errorf("closed %d %q", code, reason)
		case ws.OpText:
		default:
			return fmt.Errorf("frame %v", f.Header.OpCode)
		}
		var m struct {
			Action   string `json:"action"`
			InfoHash string `json:"info_hash"`
			Offer    any    `json:"offer"`
			Failure  string `json:"failure reason"`
		}
		if err := json.Unmarshal(f.Payload, &m); err != nil || m.Action != "announce" || m.InfoHash != latin1(h[:]) || m.Failure != "" {
			return fmt.Errorf("not a message for this connection: %q", f.Payload)
		}
		if m.Offer == nil {
			return nil
		}
	}
}

// expectClose reads to the server's close frame, which must carry code,
// and then the end of the stream.
func expectClose(c net.Conn, code ws.StatusCode) error {
	for {
		f, err := tt.ReadWSFrame(c)
		if err != nil {
			return fmt.Errorf("waiting for the close frame: %w", err)
		}
		if f.Header.OpCode != ws.OpClose {
			continue
		}
		if got, _ := ws.ParseCloseFrameData(f.Payload); got != code {
			return fmt.Errorf("closed with %d, want %d", got, code)
		}
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			return fmt.Errorf("after the close frame: %v, want the end of stream", err)
		}
		return nil
	}
}
