package httpproto

import (
	"strconv"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Round trips, in the style of aquatic's protocol crates: what the client
// side writes, the server side reads back the same, and the other way.

// allBytes is a 20-byte id of the bytes from first on: every byte value,
// escaped or not, passes through the encoders somewhere.
func allBytes(first byte) (id [20]byte) {
	for i := range id {
		id[i] = first + byte(i)
	}
	return id
}

func TestAnnounceQueryRoundTrip(t *testing.T) {
	for first := 0; first < 256; first += 20 {
		want := bittorrent.AnnounceRequest{InfoHash: allBytes(byte(first)), PeerID: allBytes(byte(255 - first)),
			Port: uint16(1 + first*200), Left: uint64(first) << 40, NumWant: int32(first)}
		q := AppendAnnounceQuery(nil, &want)
		var got bittorrent.AnnounceRequest
		var opts AnnounceOptions
		if err := ParseAnnounce(q, &got, &opts); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got != want || !opts.Compact {
			t.Fatalf("%s:\n got %+v\nwant %+v (compact %v)", q, got, want, opts.Compact)
		}
	}
}

func TestScrapeQueryRoundTrip(t *testing.T) {
	hashes := []bittorrent.InfoHash{allBytes(0), allBytes(100), allBytes(200)} // sorted, as ParseScrape returns them
	got, err := ParseScrape(AppendScrapeQuery(nil, hashes), nil)
	if err != nil || len(got) != len(hashes) {
		t.Fatalf("%v %v", got, err)
	}
	for i := range hashes {
		if got[i] != KeyOf(hashes[i]) {
			t.Fatalf("hash %d: %x, want %x", i, got[i].Bytes(), hashes[i])
		}
	}
}

// inResponse wraps a bencoded body in the HTTP response the frontend sends.
func inResponse(body []byte) []byte {
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	return append([]byte(head), body...)
}

func TestAnnounceResponseRoundTrip(t *testing.T) {
	resp := sampleResponse()
	for range 3 {
		resp.Peers4 = append(resp.Peers4, bittorrent.Peer4{IP: [4]byte{'5', ':', 'p', 'e'}, Port: 0x3a3a}) // bytes that look like bencode
	}
	wire := inResponse(AppendAnnounceResponse(nil, resp, AnnounceOptions{Compact: true}))
	used, body, keep, err := ParseResponse(wire, false)
	if err != nil || used != len(wire) || !keep {
		t.Fatalf("%d of %d, keep %v: %v", used, len(wire), keep, err)
	}
	if IsFailure(body) {
		t.Fatal("an announce reply read as a failure")
	}
	if n := CountCompactPeers(body); n != len(resp.Peers4) {
		t.Fatalf("%d compact peers, want %d", n, len(resp.Peers4))
	}
}

func TestFailureRoundTrip(t *testing.T) {
	wire := inResponse(AppendFailure(nil, ErrBadPort.Message))
	_, body, _, err := ParseResponse(wire, false)
	if err != nil || !IsFailure(body) {
		t.Fatalf("%q: failure %v, %v", body, IsFailure(body), err)
	}
	v, err := Decode(body)
	if reason, _ := v.(map[string]any)["failure reason"].(string); err != nil || reason != ErrBadPort.Message {
		t.Fatalf("%v %v", v, err)
	}
}

func FuzzAnnounceQueryRoundTrip(f *testing.F) {
	f.Add(make([]byte, 40), uint16(1), uint64(0), int32(50))
	f.Fuzz(func(t *testing.T, ids []byte, port uint16, left uint64, numWant int32) {
		if len(ids) < 40 || port == 0 {
			return
		}
		want := bittorrent.AnnounceRequest{InfoHash: [20]byte(ids[:20]), PeerID: [20]byte(ids[20:40]), Port: port,
			Left: left % (1 << 63), NumWant: max(numWant, 0)}
		var got bittorrent.AnnounceRequest
		var opts AnnounceOptions
		if err := ParseAnnounce(AppendAnnounceQuery(nil, &want), &got, &opts); err != nil || got != want {
			t.Fatalf("got %+v, %v; want %+v", got, err, want)
		}
	})
}
