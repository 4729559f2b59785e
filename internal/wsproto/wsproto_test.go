package wsproto

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trakx/trakx/internal/bittorrent"
)

// latin1 is how a browser's JSON.stringify writes a binary string: one
// code point per byte.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func allBytes(start byte) (id ID) {
	for i := range id {
		id[i] = start + byte(i)*13
	}
	return id
}

func TestParseAnnounceKeepsBinaryStrings(t *testing.T) {
	h, p, o, to := allBytes(0), allBytes(0x80), allBytes(0xf0), allBytes(0x20)
	msg, _ := json.Marshal(map[string]any{
		"action": "announce", "info_hash": latin1(h[:]), "peer_id": latin1(p[:]), "numwant": 2, "uploaded": 0, "downloaded": 0,
		"left": nil, "event": "started",
		"offers": []any{map[string]any{"offer": map[string]string{"type": "offer", "sdp": "v=0\r\n"}, "offer_id": latin1(o[:])}},
	})
	var r Request
	if err := Parse(msg, 10, &r); err != nil {
		t.Fatal(err)
	}
	if r.Action != Announce || ID(r.InfoHash) != h || ID(r.PeerID) != p || r.LeftKnown || r.Event != bittorrent.EventStarted ||
		len(r.Offers) != 1 || r.Offers[0].ID != o || !bytes.Contains(r.Offers[0].Offer, []byte(`"sdp":"v=0\r\n"`)) {
		t.Fatalf("%+v", r)
	}
	// \u00XX escapes read the same as two-byte UTF-8.
	escaped := `{"action":"announce","info_hash":"` + strings.Repeat(`\u00ff`, 20) + `","peer_id":"` + strings.Repeat(`\u0001`, 20) +
		`","answer":{"type":"answer","sdp":"x"},"offer_id":"` + strings.Repeat("o", 20) + `","to_peer_id":` + string(AppendBinary(nil, to[:])) + `,"left":0}`
	if err := Parse([]byte(escaped), 10, &r); err != nil {
		t.Fatal(err)
	}
	if r.InfoHash != bittorrent.InfoHash(bytes.Repeat([]byte{0xff}, 20)) || r.PeerID[0] != 1 || ID(r.ToPeerID) != to ||
		!r.LeftKnown || r.Left != 0 || string(r.Answer) != `{"type":"answer","sdp":"x"}` {
		t.Fatalf("%+v", r)
	}
}

// TestParseAnnouncePausedAndHugeNumwant: paused reads as BEP 21's paused,
// as over HTTP and UDP; numwant is not read at all (a WebSocket peer is
// sent one peer per offer it makes, up to websocket.max_offers), so a
// numwant beyond any integer type cannot fail an announce.
func TestParseAnnouncePausedAndHugeNumwant(t *testing.T) {
	good := latin1(bytes.Repeat([]byte{'a'}, 20))
	for _, numwant := range []string{"100000000000000000000000000", `"100000000000000000000000000"`, "1e400", "-1e400"} {
		msg := `{"action":"announce","info_hash":"` + good + `","peer_id":"` + good + `","numwant":` + numwant + `,"left":5,"event":"paused"}`
		var r Request
		if err := Parse([]byte(msg), 10, &r); err != nil || r.Event != bittorrent.EventPaused || r.Left != 5 {
			t.Errorf("numwant %s: %v %+v", numwant, err, r)
		}
	}
}

func TestParseRefusesBadMessages(t *testing.T) {
	good := latin1(bytes.Repeat([]byte{'a'}, 20))
	for msg, want := range map[string]string{
		`not json`: "invalid JSON",
		`{"action":"announce","info_hash":"short","peer_id":"` + good + `"}`:                                "invalid info_hash",
		`{"action":"announce","info_hash":"` + good + `x","peer_id":"` + good + `"}`:                        "invalid info_hash",
		`{"action":"announce","info_hash":"` + strings.Repeat("ā", 20) + `","peer_id":"` + good + `"}`:      "invalid info_hash", // U+0101 is no byte
		`{"action":"announce","info_hash":["` + good + `"],"peer_id":"` + good + `"}`:                       "invalid info_hash",
		`{"action":"announce","info_hash":"` + good + `"}`:                                                  "invalid peer_id",
		`{"action":"announce","info_hash":"` + good + `","peer_id":"` + good + `","event":"bogus"}`:         "invalid event",
		`{"action":"announce","info_hash":"` + good + `","peer_id":"` + good + `","left":-1}`:               "invalid left",
		`{"action":"announce","info_hash":"` + good + `","peer_id":"` + good + `","answer":{}}`:             "invalid `to_peer_id`",
		`{"action":"announce","info_hash":"` + good + `","peer_id":"` + good + `","offers":[{"offer":{}}]}`: "invalid offers",
		`{"action":"announce","info_hash":"` + good + `","peer_id":"` + good + `","offers":{}}`:             "invalid offers",
		`{"action":"connect"}`:                "invalid action",
		`{"action":"scrape","info_hash":[1]}`: "invalid info_hash",
	} {
		var r Request
		if err := Parse([]byte(msg), 10, &r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", msg, err, want)
		}
	}
	many := make([]map[string]any, MaxScrapeHashes+1)
	hashes := make([]string, MaxScrapeHashes+1)
	for i := range hashes {
		hashes[i] = good
		many[i] = map[string]any{"offer": map[string]string{"sdp": "x"}, "offer_id": good}
	}
	msg, _ := json.Marshal(map[string]any{"action": "scrape", "info_hash": hashes})
	var r Request
	if err := Parse(msg, 10, &r); err != ErrTooManyHashes {
		t.Errorf("scrape of %d: %v", len(hashes), err)
	}
	msg, _ = json.Marshal(map[string]any{"action": "announce", "info_hash": good, "peer_id": good, "offers": many})
	if err := Parse(msg, 10, &r); err != nil || len(r.Offers) != 10 {
		t.Errorf("%d offers: %v, kept %d", len(many), err, len(r.Offers))
	}
}

// TestEncodingRoundTrips: what the encoders write, encoding/json reads
// back, binary strings byte for byte.
func TestEncodingRoundTrips(t *testing.T) {
	var h bittorrent.InfoHash
	var p bittorrent.PeerID
	for i := range h {
		h[i], p[i] = byte(i*13+7), byte(255-i*11)
	}
	h[3], h[4], h[5] = '"', '\\', 0x7f
	reply := AppendAnnounceReply(nil, &AnnounceReply{InfoHash: h, Interval: 120, Complete: 3, Incomplete: 4})
	var got map[string]any
	if err := json.Unmarshal(reply, &got); err != nil {
		t.Fatalf("%s: %v", reply, err)
	}
	if got["action"] != "announce" || got["info_hash"] != latin1(h[:]) || got["interval"] != 120.0 || got["complete"] != 3.0 || got["incomplete"] != 4.0 {
		t.Fatalf("%v", got)
	}
	offer := Offer{ID: allBytes(9), Offer: json.RawMessage(`{"type":"offer","sdp":"v=0"}`)}
	msg := AppendOffer(nil, &offer, &p, &h)
	if err := json.Unmarshal(msg, &got); err != nil || got["peer_id"] != latin1(p[:]) || got["offer_id"] != latin1(offer.ID[:]) ||
		got["offer"].(map[string]any)["sdp"] != "v=0" {
		t.Fatalf("%s: %v %v", msg, got, err)
	}
	scrape := AppendScrapeReply(nil, []ScrapeFile{{InfoHash: h, ScrapeStats: bittorrent.ScrapeStats{Complete: 1, Incomplete: 2, Downloaded: 5}}}, 60)
	if err := json.Unmarshal(scrape, &got); err != nil || got["files"].(map[string]any)[latin1(h[:])].(map[string]any)["downloaded"] != 5.0 {
		t.Fatalf("%s: %v", scrape, err)
	}
	fail := AppendFailure(nil, `bad "thing"`, Announce, &h)
	if err := json.Unmarshal(fail, &got); err != nil || got["failure reason"] != `bad "thing"` || got["info_hash"] != latin1(h[:]) {
		t.Fatalf("%s: %v", fail, err)
	}
}

// FuzzParse: any message is read or refused, never a panic; what is read
// goes back out through the encoders as valid JSON with the same ids.
func FuzzParse(f *testing.F) {
	good := latin1(bytes.Repeat([]byte{0xe9}, 20))
	f.Add([]byte(`{"action":"announce","info_hash":"` + good + `","peer_id":"` + good + `","offers":[{"offer":{"sdp":"x"},"offer_id":"` + good + `"}]}`))
	f.Add([]byte(`{"action":"scrape","info_hash":["` + good + `"]}`))
	f.Add([]byte(`{"action":"announce","info_hash":"` + good + `","peer_id":"` + good + `","answer":{"sdp":"y"},"offer_id":"` + good + `","to_peer_id":"` + good + `"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var r Request
		if Parse(msg, 10, &r) != nil || r.Action != Announce {
			return
		}
		out := AppendAnnounceReply(nil, &AnnounceReply{InfoHash: r.InfoHash})
		for i := range r.Offers {
			out = append(out, '\n')
			out = AppendOffer(out, &r.Offers[i], &r.PeerID, &r.InfoHash)
		}
		if r.Answer != nil {
			out = append(out, '\n')
			out = AppendAnswer(out, &r)
		}
		// Text that is UTF-8 is relayed as UTF-8 (RFC 6455 section 8.1):
		// a browser fails a connection that sends anything else.
		if utf8.Valid(msg) && !utf8.Valid(out) {
			t.Fatalf("UTF-8 %q made %q", msg, out)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if m["info_hash"] != latin1(r.InfoHash[:]) {
				t.Fatalf("info_hash %q came back as %q", r.InfoHash, m["info_hash"])
			}
		}
	})
}

// FuzzBinaryIDAgainstEncodingJSON: the hand-written decoding of binary
// strings reads what encoding/json reads, for any JSON string.
func FuzzBinaryIDAgainstEncodingJSON(f *testing.F) {
	f.Add([]byte(`"` + strings.Repeat(`\u00ff`, 20) + `"`))
	f.Add([]byte(`"` + strings.Repeat("é", 20) + `"`))
	f.Add([]byte(`"\"\\\/\b\f\n\r\tabcdefghijklmn"`))
	f.Add([]byte(`"\ud83d\ude00aaaaaaaaaaaaaaaaaa"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var s string
		if !json.Valid(raw) || json.Unmarshal(raw, &s) != nil {
			return
		}
		want, wantOK := ID{}, utf8.ValidString(s) && utf8.RuneCountInString(s) == 20
		if wantOK {
			i := 0
			for _, c := range s {
				if c > 0xff {
					wantOK = false
					break
				}
				want[i] = byte(c)
				i++
			}
		}
		var got ID
		if ok := binaryID(raw, &got); ok != wantOK || (ok && got != want) {
			t.Fatalf("%q: binaryID %v %q, encoding/json %v %q", raw, ok, got, wantOK, want)
		}
	})
}

// FuzzScanAgainstEncodingJSON: the hand-written JSON reader accepts what
// encoding/json accepts as an object, and hands out the same members.
func FuzzScanAgainstEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[true,false,null,{"c":"\u00e9"}],"a":-0.5e+3}`, `{}`, ` { "x" : "y" } `, `{"a":01}`,
		`{"a":"\x01"}`, `[1]`, `{"a":1,}`, `{"a":"b"} x`, `{"\u0061ction":"announce"}`, `{"offers":[{"offer":{"sdp":"v=0\r\n"},"offer_id":"x"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(msg, &want)
		if wantErr == nil && want == nil {
			return // null: encoding/json leaves a map alone; no message is null
		}
		got := map[string]string{}
		err := eachMember(msg, func(key, value []byte) { got[memberName(key)] = string(value) })
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: scanner says %v, encoding/json %v", msg, err, wantErr)
		}
		if err != nil || !utf8.Valid(msg) {
			return
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || !bytes.Equal(bytes.TrimSpace([]byte(g)), bytes.TrimSpace(v)) {
				t.Fatalf("%q: member %q is %q, encoding/json %q", msg, k, g, v)
			}
		}
	})
}
