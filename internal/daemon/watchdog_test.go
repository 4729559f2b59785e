package daemon

import (
	"context"
	"io"
	"strings"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	tt "github.com/trakx/trakx/internal/trackertest"
	"github.com/trakx/trakx/internal/udpproto"
)

// TestWatchdogStopsWhenAWorkerWedges wedges a real UDP worker on a shard
// lock and checks that the watchdog withholds its ping until the worker is
// free again.
func TestWatchdogStopsWhenAWorkerWedges(t *testing.T) {
	notify := listenNotify(t)

	d := startUDPOnly(t, "")

	const limit = 50 * time.Millisecond
	if !d.watchdogTick(limit) {
		t.Fatal("a healthy tracker withheld the ping")
	}
	buf := make([]byte, 256)
	notify.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := notify.Read(buf); err != nil || string(buf[:n]) != "WATCHDOG=1" {
		t.Fatalf("notify got %q %v", buf[:n], err)
	}

	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	hash := tt.Hash("wedge")
	req := &bittorrent.AnnounceRequest{InfoHash: hash, Port: 9, NumWant: -1}
	if _, err := c.Announce(req); err != nil {
		t.Fatal(err)
	}
	// Hold the lock of the torrent's shard, as a deadlock would.
	release := d.store.Stall(&hash)
	tx := c.NextTx()
	c.Conn.Write(udpproto.AppendAnnounceRequest(nil, c.ID, tx, req))
	deadline := time.Now().Add(5 * time.Second)
	for !d.stalled(limit) {
		if time.Now().After(deadline) {
			t.Fatal("the wedged worker was never seen as stalled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d.watchdogTick(limit) {
		t.Fatal("pinged the watchdog with a wedged worker")
	}
	release()
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Conn.Read(buf); err != nil || n < 20 {
		t.Fatalf("the freed worker did not answer: %v", err)
	}
	// The worker marks itself idle just after sending the reply.
	for deadline := time.Now().Add(5 * time.Second); d.stalled(limit); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the freed worker still counts as stalled")
		}
	}
	if !d.watchdogTick(limit) {
		t.Fatal("the watchdog did not resume once the worker was free")
	}
}

// listenNotify stands in for systemd's notification socket until the test
// ends.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notify.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return notify
}

// startUDPOnly runs a tracker with one UDP listener on loopback, and the
// stats listener at stats ("" for none), for tests inside the package.
func startUDPOnly(t *testing.T, stats string) *Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.UDP.Listen = []string{"127.0.0.1:0"}
	cfg.HTTP.Listen = nil
	cfg.Stats.Listen = stats
	cfg.Database.Path = filepath.Join(t.TempDir(), "peers.db")
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

// TestWatchdogStopsWhenAWebSocketLoopWedges: a WebSocket polling loop
// stuck inside an announce withholds the watchdog's ping, as a wedged UDP
// worker does, until it is free again.
func TestWatchdogStopsWhenAWebSocketLoopWedges(t *testing.T) {
	listenNotify(t)
	cfg := config.Default()
	cfg.UDP.Listen = nil
	cfg.HTTP.Listen = []string{"127.0.0.1:0"}
	cfg.Stats.Listen = ""
	cfg.Database.Path = filepath.Join(t.TempDir(), "peers.db")
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })

	const limit = 50 * time.Millisecond
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+d.HTTPAddrs()[0].String()+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var hash bittorrent.InfoHash
	copy(hash[:], "wedged-loop-infohash") // ASCII, to write it in JSON as it is
	release := d.ws.Stall(&hash)
	id := strings.Repeat("p", 20)
	wsutil.WriteClientText(conn, []byte(`{"action":"announce","info_hash":"`+string(hash[:])+`","peer_id":"`+id+`","numwant":0}`))
	for deadline := time.Now().Add(5 * time.Second); !d.stalled(limit); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the wedged loop was never seen as stalled")
		}
	}
	if d.watchdogTick(limit) {
		t.Fatal("pinged the watchdog with a wedged WebSocket loop")
	}
	release()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if reply, err := wsutil.ReadServerText(conn); err != nil || !strings.Contains(string(reply), `"interval"`) {
		t.Fatalf("the freed loop did not answer: %q %v", reply, err)
	}
	for deadline := time.Now().Add(5 * time.Second); d.stalled(limit); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the freed loop still counts as stalled")
		}
	}
	if !d.watchdogTick(limit) {
		t.Fatal("the watchdog did not resume once the loop was free")
	}
}
