package wsproto

import (
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Round trips, in the style of aquatic's protocol crates: what the client
// side writes, the server side reads back the same.

func TestAnnounceRequestRoundTrip(t *testing.T) {
	for start := 0; start < 256; start += 7 {
		h, id := bittorrent.InfoHash(allBytes(byte(start))), bittorrent.PeerID(allBytes(byte(255-start)))
		left := uint64(start) << 33
		msg := AppendAnnounceRequest(nil, &h, &id, left)
		var r Request
		if err := Parse(msg, 10, &r); err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		want := Request{Action: Announce, InfoHash: h, PeerID: id, Left: left, LeftKnown: true}
		if r.Action != want.Action || r.InfoHash != h || r.PeerID != id || r.Left != left || !r.LeftKnown || r.Offers != nil || r.Answer != nil {
			t.Fatalf("%s:\n got %+v\nwant %+v", msg, r, want)
		}
	}
}

func TestFailureIsFailure(t *testing.T) {
	h := bittorrent.InfoHash(allBytes(1))
	if !IsFailure(AppendFailure(nil, ErrInvalidPeerID.Message, Announce, &h)) || !IsFailure(AppendFailure(nil, "x", 0, nil)) {
		t.Fatal("a failure not read as one")
	}
	if IsFailure(AppendAnnounceReply(nil, &AnnounceReply{InfoHash: h, Interval: 120, Complete: 1})) {
		t.Fatal("an announce reply read as a failure")
	}
}

// FuzzAnnounceRequestRoundTrip: any ids and left survive the client's
// encoder and the server's parser.
func FuzzAnnounceRequestRoundTrip(f *testing.F) {
	f.Add([]byte(`"\"\\\u0000abcdefghijklmnopqrstuvwxyz0123456789`), uint64(1))
	f.Fuzz(func(t *testing.T, ids []byte, left uint64) {
		if len(ids) < 40 {
			return
		}
		h, id := bittorrent.InfoHash(ids[:20]), bittorrent.PeerID(ids[20:40])
		left %= 1 << 52 // exact in a float64, as JSON numbers are read
		var r Request
		if err := Parse(AppendAnnounceRequest(nil, &h, &id, left), 10, &r); err != nil || r.InfoHash != h || r.PeerID != id || r.Left != left {
			t.Fatalf("%+v, %v", r, err)
		}
	})
}

// TestParseErrorsAreClientErrors: every refusal is a *bittorrent.ClientError
// of kind malformed, whose text the client reads as the failure reason.
func TestParseErrorsAreClientErrors(t *testing.T) {
	for _, msg := range []string{`{`, `{"action":"connect"}`, `{"action":"announce"}`, `{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa"}`,
		`{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"aaaaaaaaaaaaaaaaaaaa","left":-1}`,
		`{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"aaaaaaaaaaaaaaaaaaaa","event":"x"}`,
		`{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"aaaaaaaaaaaaaaaaaaaa","offers":[1]}`,
		`{"action":"scrape","info_hash":[1]}`} {
		var r Request
		err := Parse([]byte(msg), 10, &r)
		ce, ok := err.(*bittorrent.ClientError)
		if !ok || ce.Kind != bittorrent.KindMalformed || ce.Message == "" {
			t.Errorf("%s: %#v", msg, err)
		}
	}
}
