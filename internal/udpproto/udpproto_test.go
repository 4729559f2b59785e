package udpproto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

func sampleAnnounce() bittorrent.AnnounceRequest {
	req := bittorrent.AnnounceRequest{
		Port: 51413, Uploaded: 1 << 40, Downloaded: 12345, Left: 0, Event: bittorrent.EventCompleted,
		NumWant: -1, Key: 0xdeadbeef,
	}
	copy(req.InfoHash[:], "0123456789abcdefghij")
	copy(req.PeerID[:], "-TR3000-abcdefghijkl")
	return req
}

func TestAnnounceRequestRoundTrip(t *testing.T) {
	want := sampleAnnounce()
	pkt := AppendAnnounceRequest(nil, 0x1122334455667788, 99, &want)
	if len(pkt) != announceRequestSize {
		t.Fatalf("request is %d bytes", len(pkt))
	}
	h, err := ParseHeader(pkt)
	if err != nil || h.ConnectionID != 0x1122334455667788 || h.Action != ActionAnnounce || h.TransactionID != 99 {
		t.Fatalf("header %+v %v", h, err)
	}
	var got bittorrent.AnnounceRequest
	if err := ParseAnnounce(pkt, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// BEP 41: URL data after the fixed part is tolerated.
	withURL := append(append([]byte{}, pkt...), 0x2, 9, '/', 'a', 'n', 'n', 'o', 'u', 'n', 'c', 'e', 0x1, 0x0)
	if err := ParseAnnounce(withURL, &got); err != nil || got != want {
		t.Fatalf("with BEP 41 options: %v %+v", err, got)
	}
}

func TestAnnounceRequestErrors(t *testing.T) {
	req := sampleAnnounce()
	pkt := AppendAnnounceRequest(nil, 1, 2, &req)
	var got bittorrent.AnnounceRequest
	if err := ParseAnnounce(pkt[:97], &got); !errors.Is(err, ErrShortPacket) {
		t.Errorf("short: %v", err)
	}
	for _, event := range []uint32{5, 6, 0x100, 0xffffffff} {
		bad := bytes.Clone(pkt)
		binary.BigEndian.PutUint32(bad[80:], event)
		if err := ParseAnnounce(bad, &got); !errors.Is(err, ErrBadEvent) {
			t.Errorf("event %d: %v", event, err)
		}
	}
	bad := bytes.Clone(pkt)
	binary.BigEndian.PutUint16(bad[96:], 0)
	if err := ParseAnnounce(bad, &got); !errors.Is(err, ErrBadPort) {
		t.Errorf("port 0: %v", err)
	}
}

// TestAnnouncePaused: libtorrent 2.0.8 (Debian 12's python3-libtorrent)
// announces a partial seed (files deselected, the rest complete) with
// event 4, BEP 21's paused. This is the datagram it sent, captured on
// loopback: it must read as an announce like any other.
func TestAnnouncePaused(t *testing.T) {
	const sent = "1111111111111111" + "00000001" + "9597cd4e" + // connection id, announce, transaction id
		"21275169268009bb5124c0e35600a69320e39b43" + // info hash
		"2d4c54323038302d37324a476f42463269736254" + // peer id -LT2080-…
		"0000000000000000" + "0000000000010000" + "0000000000000000" + // downloaded, left 65536, uploaded
		"00000004" + "00000000" + "e92818c4" + "000000c8" + "8489" + // event 4, ip, key, numwant 200, port
		"02092f616e6e6f756e6365" // BEP 41 URL data "/announce"
	pkt, err := hex.DecodeString(sent)
	if err != nil {
		t.Fatal(err)
	}
	var got bittorrent.AnnounceRequest
	if err := ParseAnnounce(pkt, &got); err != nil {
		t.Fatal(err)
	}
	if got.Event != bittorrent.EventPaused || got.Left != 65536 || got.Port != 0x8489 || got.NumWant != 200 ||
		got.Key != 0xe92818c4 || string(got.PeerID[:8]) != "-LT2080-" {
		t.Fatalf("%+v", got)
	}
	// Written back, it is the same request.
	again := AppendAnnounceRequest(nil, 0x1111111111111111, 0x9597cd4e, &got)
	if !bytes.Equal(again, pkt[:announceRequestSize]) {
		t.Fatalf("written back:\n%x\nwant\n%x", again, pkt[:announceRequestSize])
	}
}

func TestScrapeRoundTrip(t *testing.T) {
	hashes := make([]bittorrent.InfoHash, MaxScrapeHashes)
	for i := range hashes {
		hashes[i][0], hashes[i][19] = byte(i), byte(255-i)
	}
	pkt := AppendScrapeRequest(nil, 5, 6, hashes)
	got, err := ParseScrape(pkt, nil)
	if err != nil || len(got) != len(hashes) || got[73] != hashes[73] {
		t.Fatalf("%d hashes, %v", len(got), err)
	}
	if _, err := ParseScrape(AppendScrapeRequest(nil, 5, 6, append(hashes, hashes[0])), nil); !errors.Is(err, ErrTooManyHashes) {
		t.Errorf("75 hashes: %v", err)
	}
	if _, err := ParseScrape(pkt[:16], nil); !errors.Is(err, ErrNoInfoHash) {
		t.Errorf("no hashes: %v", err)
	}
	if _, err := ParseScrape(pkt[:30], nil); !errors.Is(err, ErrRaggedScrape) {
		t.Errorf("ragged: %v", err)
	}

	stats := []bittorrent.ScrapeStats{{Complete: 1, Downloaded: 2, Incomplete: 3}, {Complete: 4, Downloaded: 5, Incomplete: 6}}
	reply := AppendScrapeResponseHeader(nil, 6)
	for _, st := range stats {
		reply = AppendScrapeStats(reply, st)
	}
	back, err := ParseScrapeResponse(reply, nil)
	if err != nil || len(back) != 2 || back[0] != stats[0] || back[1] != stats[1] {
		t.Fatalf("scrape reply %+v %v", back, err)
	}
}

func TestAnnounceResponseRoundTrip(t *testing.T) {
	for _, ipv6 := range []bool{false, true} {
		resp := bittorrent.AnnounceResponse{Interval: 1800 * time.Second, Complete: 3, Incomplete: 4}
		resp.Peers4 = []bittorrent.Peer4{{IP: [4]byte{1, 2, 3, 4}, Port: 5}, {IP: [4]byte{6, 7, 8, 9}, Port: 10}}
		resp.Peers6 = []bittorrent.Peer6{{IP: [16]byte{15: 1}, Port: 7}}
		pkt := AppendAnnounceResponse(nil, 42, &resp, ipv6)
		peerSize, count := 6, 2
		if ipv6 {
			peerSize, count = 18, 1
		}
		if len(pkt) != 20+peerSize*count {
			t.Fatalf("ipv6=%v: %d bytes", ipv6, len(pkt))
		}
		h, _ := ParseResponseHeader(pkt)
		if h.Action != ActionAnnounce || h.TransactionID != 42 {
			t.Fatalf("header %+v", h)
		}
		var back bittorrent.AnnounceResponse
		if err := ParseAnnounceResponse(pkt, &back, ipv6); err != nil {
			t.Fatal(err)
		}
		if back.Interval != resp.Interval || back.Complete != 3 || back.Incomplete != 4 {
			t.Fatalf("figures %+v", back)
		}
		if ipv6 && (len(back.Peers6) != 1 || back.Peers6[0].IP != resp.Peers6[0].IP || back.Peers6[0].Port != 7) {
			t.Fatalf("peers6 %+v", back.Peers6)
		}
		if !ipv6 && (len(back.Peers4) != 2 || back.Peers4[1].IP != resp.Peers4[1].IP || back.Peers4[1].Port != 10) {
			t.Fatalf("peers4 %+v", back.Peers4)
		}
	}
}

func TestConnectAndError(t *testing.T) {
	pkt := AppendConnectRequest(nil, 7)
	h, err := ParseHeader(pkt)
	if err != nil || h.ConnectionID != ProtocolID || h.Action != ActionConnect || h.TransactionID != 7 {
		t.Fatalf("connect %+v %v", h, err)
	}
	id, err := ParseConnectResponse(AppendConnectResponse(nil, 7, 0xabc))
	if err != nil || id != 0xabc {
		t.Fatalf("connect reply %x %v", id, err)
	}
	msg, err := ParseErrorResponse(AppendError(nil, 7, "invalid event"))
	if err != nil || msg != "invalid event" {
		t.Fatalf("error reply %q %v", msg, err)
	}
}

// FuzzParseRequest feeds arbitrary datagrams to every request parser. None
// may panic, and what an announce parser accepts must encode back to the
// same fixed part.
func FuzzParseRequest(f *testing.F) {
	req := sampleAnnounce()
	f.Add(AppendConnectRequest(nil, 1))
	f.Add(AppendAnnounceRequest(nil, 1, 2, &req))
	f.Add(AppendScrapeRequest(nil, 1, 2, []bittorrent.InfoHash{{1}, {2}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		var got bittorrent.AnnounceRequest
		if ParseAnnounce(b, &got) == nil {
			again := AppendAnnounceRequest(nil, h.ConnectionID, h.TransactionID, &got)
			binary.BigEndian.PutUint32(again[8:], binary.BigEndian.Uint32(b[8:]))
			copy(again[84:88], b[84:88])
			if !bytes.Equal(again, b[:announceRequestSize]) {
				t.Fatalf("announce did not round-trip:\n%x\n%x", again, b[:announceRequestSize])
			}
		}
		if hashes, err := ParseScrape(b, nil); err == nil && len(hashes)*20+16 != len(b) {
			t.Fatalf("%d hashes from %d bytes", len(hashes), len(b))
		}
	})
}

func BenchmarkParseAnnounce(b *testing.B) {
	req := sampleAnnounce()
	pkt := AppendAnnounceRequest(nil, 1, 2, &req)
	var got bittorrent.AnnounceRequest
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseAnnounce(pkt, &got); err != nil {
			b.Fatal(err)
		}
	}
}
