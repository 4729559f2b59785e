package daemon_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	tt "github.com/trakx/trakx/internal/trackertest"
	"github.com/trakx/trakx/internal/udpproto"
)

// startTracker runs a real tracker on loopback ports chosen by the kernel.
func startTracker(t *testing.T, edit func(*config.Config)) *daemon.Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.UDP.Listen = []string{"127.0.0.1:0", "[::1]:0"}
	cfg.HTTP.Listen = []string{"127.0.0.1:0", "[::1]:0"}
	cfg.Stats.Listen = "127.0.0.1:0"
	cfg.Database.Path = t.TempDir() + "/peers.db"
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := daemon.New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

// families runs f once over IPv4 and once over IPv6, with the index of the
// tracker's listener of that family.
func families(t *testing.T, f func(t *testing.T, i int)) {
	t.Run("ipv4", func(t *testing.T) { f(t, 0) })
	t.Run("ipv6", func(t *testing.T) { f(t, 1) })
}

func peerReq(hash bittorrent.InfoHash, port uint16, left uint64, ev bittorrent.Event) *bittorrent.AnnounceRequest {
	req := &bittorrent.AnnounceRequest{InfoHash: hash, Port: port, Left: left, Event: ev, NumWant: -1}
	copy(req.PeerID[:], fmt.Sprintf("-TT0001-%012d", port))
	return req
}

func TestUDPAnnounceAndScrape(t *testing.T) {
	d := startTracker(t, nil)
	families(t, func(t *testing.T, i int) {
		addr := d.UDPAddrs()[i].String()
		hash := tt.Hash(fmt.Sprintf("udp-announce-%d", i))
		seeder, leecher := tt.DialUDP(t, addr), tt.DialUDP(t, addr)
		seeder.Connect()
		leecher.Connect()

		resp, err := seeder.Announce(peerReq(hash, 1111, 0, bittorrent.EventStarted))
		if err != nil || len(resp.Peers4)+len(resp.Peers6) != 0 || resp.Complete != 1 {
			t.Fatalf("first announce: %+v %v", resp, err)
		}
		if resp.Interval.Minutes() < 30 || resp.Interval.Minutes() > 32 {
			t.Fatalf("interval %v", resp.Interval)
		}
		resp, err = leecher.Announce(peerReq(hash, 2222, 100, bittorrent.EventStarted))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Complete != 1 || resp.Incomplete != 1 {
			t.Fatalf("counts %d/%d", resp.Complete, resp.Incomplete)
		}
		if seeder.IPv6() {
			if len(resp.Peers6) != 1 || resp.Peers6[0].Port != 1111 || net.IP(resp.Peers6[0].IP[:]).String() != "::1" {
				t.Fatalf("ipv6 peers %+v", resp.Peers6)
			}
		} else if len(resp.Peers4) != 1 || resp.Peers4[0].Port != 1111 || net.IP(resp.Peers4[0].IP[:]).String() != "127.0.0.1" {
			t.Fatalf("ipv4 peers %+v", resp.Peers4)
		}

		resp, err = leecher.Announce(peerReq(hash, 2222, 0, bittorrent.EventCompleted))
		if err != nil || resp.Complete != 2 || resp.Incomplete != 0 {
			t.Fatalf("completed: %+v %v", resp, err)
		}
		st, err := seeder.Scrape(hash, tt.Hash("unknown"))
		if err != nil || len(st) != 2 || st[0] != (bittorrent.ScrapeStats{Complete: 2, Downloaded: 1}) || st[1] != (bittorrent.ScrapeStats{}) {
			t.Fatalf("scrape %+v %v", st, err)
		}
		if _, err := seeder.Announce(peerReq(hash, 1111, 0, bittorrent.EventStopped)); err != nil {
			t.Fatal(err)
		}
		if st, _ := seeder.Scrape(hash); st[0].Complete != 1 {
			t.Fatalf("after stop %+v", st)
		}
	})
}

// TestUDPPeerSizesAndNumWant: numwant is honoured up to numwant_max, a
// negative one means the default, and no reply is ever fragmented: at most
// 242 IPv4 peers (1472 bytes) or 67 IPv6 peers (1232 bytes).
func TestUDPPeerSizesAndNumWant(t *testing.T) {
	d := startTracker(t, func(cfg *config.Config) { cfg.Tracker.NumWantMax = 1000 })
	families(t, func(t *testing.T, i int) {
		addr := d.UDPAddrs()[i].String()
		hash := tt.Hash(fmt.Sprintf("numwant-%d", i))
		c := tt.DialUDP(t, addr)
		c.Connect()
		for p := range 250 {
			if _, err := c.Announce(peerReq(hash, uint16(10000+p), 1, 0)); err != nil {
				t.Fatal(err)
			}
		}
		size, most, payload := 6, 242, 1472
		if c.IPv6() {
			size, most, payload = 18, 67, 1232
		}
		for _, w := range []struct {
			numwant int32
			peers   int
		}{{-1, 50}, {-7, 50}, {0, 0}, {7, 7}, {60, 60}, {1 << 30, most}} {
			req := peerReq(hash, 9, 1, 0)
			req.NumWant = w.numwant
			tx := c.NextTx()
			reply := c.Exchange(udpproto.AppendAnnounceRequest(nil, c.ID, tx, req), tx)
			if got := (len(reply) - 20) / size; got != w.peers || (len(reply)-20)%size != 0 || len(reply) > payload {
				t.Errorf("numwant %d: reply of %d bytes, want %d peers of %d bytes", w.numwant, len(reply), w.peers, size)
			}
		}
	})
}

func TestUDPInvalidConnectionIDGetsSilence(t *testing.T) {
	d := startTracker(t, nil)
	stats := d.StatsAddr().String()
	families(t, func(t *testing.T, i int) {
		c := tt.DialUDP(t, d.UDPAddrs()[i].String())
		before, _ := tt.Lookup(tt.Vars(t, stats), "trakx.udp.bad_connection_id")
		bad := []uint64{12345, c.Connect() ^ 1}
		for _, id := range bad {
			c.Conn.Write(udpproto.AppendAnnounceRequest(nil, id, 777, peerReq(tt.Hash("x"), 1, 1, 0)))
			c.Conn.Write(udpproto.AppendScrapeRequest(nil, id, 778, []bittorrent.InfoHash{tt.Hash("x")}))
		}
		// Once the tracker has counted all four, any reply to them would
		// already be queued ahead of the connect reply; Exchange fails on it.
		tt.WaitForVar(t, stats, "trakx.udp.bad_connection_id", func(v float64) bool { return v == before+4 })
		c.Connect()
		// A connect with the wrong magic is dropped too.
		wrongMagic := udpproto.AppendConnectRequest(nil, 779)
		wrongMagic[0] ^= 0xff
		badBefore, _ := tt.Lookup(tt.Vars(t, stats), "trakx.udp.bad_request")
		c.Conn.Write(wrongMagic)
		tt.WaitForVar(t, stats, "trakx.udp.bad_request", func(v float64) bool { return v == badBefore+1 })
		c.Connect()
	})
}

func TestUDPMalformedRequestsGetErrors(t *testing.T) {
	d := startTracker(t, nil)
	families(t, func(t *testing.T, i int) {
		c := tt.DialUDP(t, d.UDPAddrs()[i].String())
		id := c.Connect()
		req := peerReq(tt.Hash("malformed"), 1, 1, 0)
		full := udpproto.AppendAnnounceRequest(nil, id, 0, req)
		cases := map[string][]byte{}
		cases["packet too short"] = full[:60]
		badEvent := append([]byte(nil), full...)
		binary.BigEndian.PutUint32(badEvent[80:], 9)
		cases["invalid event"] = badEvent
		unknown := append([]byte(nil), full[:16]...)
		binary.BigEndian.PutUint32(unknown[8:], 42)
		cases["unknown action"] = unknown
		cases["too many info hashes"] = udpproto.AppendScrapeRequest(nil, id, 0, make([]bittorrent.InfoHash, 75))
		cases["no info hash"] = udpproto.AppendScrapeRequest(nil, id, 0, nil)
		for want, pkt := range cases {
			tx := c.NextTx()
			binary.BigEndian.PutUint32(pkt[12:], tx)
			reply := c.Exchange(pkt, tx)
			h, _ := udpproto.ParseResponseHeader(reply)
			msg, _ := udpproto.ParseErrorResponse(reply)
			if h.Action != udpproto.ActionError || !strings.Contains(msg, want) {
				t.Errorf("%s: got action %d %q", want, h.Action, msg)
			}
		}
		// 74 hashes is the most a scrape carries, and is answered.
		if st, err := c.Scrape(make([]bittorrent.InfoHash, 74)...); err != nil || len(st) != 74 {
			t.Fatalf("74-hash scrape: %d %v", len(st), err)
		}
		// BEP 41 URL data after an announce is tolerated.
		withURL := append(udpproto.AppendAnnounceRequest(nil, id, 0, req), 2, 9, '/', 'a', 'n', 'n', 'o', 'u', 'n', 'c', 'e', 0)
		tx := c.NextTx()
		binary.BigEndian.PutUint32(withURL[12:], tx)
		if h, _ := udpproto.ParseResponseHeader(c.Exchange(withURL, tx)); h.Action != udpproto.ActionAnnounce {
			t.Fatalf("BEP 41 announce answered with action %d", h.Action)
		}
	})
}

func TestStatsCounters(t *testing.T) {
	d := startTracker(t, nil)
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	for p := range 3 {
		c.Announce(peerReq(tt.Hash("stats"), uint16(100+p), uint64(p), 0))
	}
	c.Scrape(tt.Hash("stats"))
	vars := tt.Vars(t, d.StatsAddr().String())
	for path, want := range map[string]float64{
		"trakx.udp.connect": 1, "trakx.udp.announce": 3, "trakx.udp.scrape": 1,
		"trakx.swarm.torrents": 1, "trakx.swarm.peers": 3, "trakx.swarm.seeders": 1, "trakx.swarm.leechers": 2,
		"trakx.http.announce": 0, "trakx.database.saves": 0,
	} {
		if got, ok := tt.Lookup(vars, path); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", path, got, ok, want)
		}
	}
	for _, path := range []string{"memstats.HeapAlloc", "trakx.uptime_seconds", "trakx.udp.error", "trakx.udp.bad_request",
		"trakx.http.scrape", "trakx.http.error", "trakx.http.bad_request", "trakx.database.save_errors",
		"trakx.database.last_save_unix", "trakx.database.last_save_seconds", "trakx.database.last_save_peers"} {
		if _, ok := tt.Lookup(vars, path); !ok {
			t.Errorf("%s missing from /debug/vars", path)
		}
	}
}

// TestCompletedCountedOncePerPeer: over UDP and HTTP alike, a download is
// counted when a peer completes and becomes a seeder, once: a repeated
// completed, one from a known seeder, or one with data left adds nothing.
func TestCompletedCountedOncePerPeer(t *testing.T) {
	d := startTracker(t, nil)
	udpHash, httpHash := tt.Hash("completed-udp"), tt.Hash("completed-http")
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	base := d.HTTPAddrs()[0].String()
	for _, a := range []struct {
		port  uint16
		left  uint64
		event bittorrent.Event
	}{
		{1, 5, bittorrent.EventStarted},
		{1, 0, bittorrent.EventCompleted}, // counts
		{1, 0, bittorrent.EventCompleted}, // repeated
		{2, 0, bittorrent.EventStarted},
		{2, 0, bittorrent.EventCompleted}, // already a seeder
		{3, 5, bittorrent.EventCompleted}, // data left
		{3, 5, bittorrent.EventCompleted},
	} {
		if _, err := c.Announce(peerReq(udpHash, a.port, a.left, a.event)); err != nil {
			t.Fatal(err)
		}
		event := map[bittorrent.Event]string{bittorrent.EventStarted: "started", bittorrent.EventCompleted: "completed"}[a.event]
		get(t, http.DefaultClient, announceURL(base, httpHash, int(a.port), int(a.left), "&event="+event))
	}
	st, err := c.Scrape(udpHash, httpHash)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Downloaded != 1 || st[1].Downloaded != 1 {
		t.Fatalf("downloaded: UDP %d, HTTP %d; want 1 each", st[0].Downloaded, st[1].Downloaded)
	}
}

// TestUDPBurstsOfConnects: bursts of 32 connects, a recvmmsg batch each,
// are all answered; with a mmsghdr laid out wrong for the platform (a
// 386 build once) only the first of each batch was.
func TestUDPBurstsOfConnects(t *testing.T) {
	d := startTracker(t, nil)
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	buf := make([]byte, 2048)
	for burst := range 10 {
		want := map[uint32]bool{}
		for i := range 32 {
			tx := uint32(burst<<8 | i)
			want[tx] = true
			c.Conn.Write(udpproto.AppendConnectRequest(nil, tx))
		}
		c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for len(want) > 0 {
			n, err := c.Conn.Read(buf)
			if err != nil {
				t.Fatalf("burst %d: %d of 32 connects unanswered: %v", burst, len(want), err)
			}
			if h, err := udpproto.ParseResponseHeader(buf[:n]); err == nil && h.Action == udpproto.ActionConnect {
				delete(want, h.TransactionID)
			}
		}
	}
}
