package wsconformance

import (
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// RFC 6455 §5.6, §8.1: text is UTF-8, and an endpoint that finds it is
// not fails the connection; 1007 says why (§7.4.1). Autobahn chapter 6.

// invalidUTF8 are byte strings that are not UTF-8, as Autobahn 6.3-6.21
// sends them.
var invalidUTF8 = []struct{ name, bytes string }{
	{"6.3.1-surrogate-in-text", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"},
	{"6.8.1-five-bytes", "\xf8\x88\x80\x80\x80"},
	{"6.8.2-six-bytes", "\xfc\x84\x80\x80\x80\x80"},
	{"6.9.1-overlong-slash-2", "\xc0\xaf"},
	{"6.9.2-overlong-slash-3", "\xe0\x80\xaf"},
	{"6.9.3-overlong-slash-4", "\xf0\x80\x80\xaf"},
	{"6.10.3-overlong-max-4", "\xf0\x8f\xbf\xbf"},
	{"6.11.1-high-surrogate", "\xed\xa0\x80"},
	{"6.11.7-low-surrogate", "\xed\xbf\xbf"},
	{"6.12.1-surrogate-pair", "\xed\xa0\x80\xed\xb0\x80"},
	{"6.14.1-lone-continuation", "\x80"},
	{"6.14.2-lone-continuation-bf", "\xbf"},
	{"6.15.1-lonely-start", "\xc0 "},
	{"6.16.1-last-byte-missing-2", "\xc2 "},
	{"6.16.2-last-byte-missing-3", "\xe2\x82 "},
	{"6.17.1-byte-fe", "\xfe"},
	{"6.17.2-byte-ff", "\xff"},
	{"6.21.x-above-10ffff", "\xf4\x90\x80\x80"},
}

// inScrape puts s into the string value of an ignored member of a scrape,
// at offset inScrapeAt.
func inScrape(s string) string { return `{"action":"scrape","x":"` + s + `"}` }

const inScrapeAt = len(`{"action":"scrape","x":"`)

// TestUTF8Invalid: a text message that is not UTF-8 fails the connection
// with 1007: whole, or with the bad bytes in one of its fragments, or
// bytes that are not JSON at all. It is not answered as a bad request.
func TestUTF8Invalid(t *testing.T) {
	t.Parallel()
	var cases []failCase
	for _, b := range invalidUTF8 {
		msg := inScrape(b.bytes)
		cases = append(cases,
			failCase{name: b.name + "-whole", frames: []frame{text(msg)}, want: ws.StatusInvalidFramePayloadData},
			// The bad bytes alone in the middle fragment of three.
			failCase{name: b.name + "-middle-fragment", frames: split(msg, inScrapeAt, inScrapeAt+len(b.bytes)), want: ws.StatusInvalidFramePayloadData},
		)
	}
	cases = append(cases,
		failCase{name: "6.3.1-not-json", frames: []frame{text(invalidUTF8[0].bytes)}, want: ws.StatusInvalidFramePayloadData},
		failCase{name: "after-a-good-message", frames: []frame{text(scrape), text(inScrape("\xff"))}, replies: 1,
			want: ws.StatusInvalidFramePayloadData},
		// 6.3.2: the same, in fragments of one byte each.
		failCase{name: "6.3.2-one-byte-fragments", frames: split(inScrape(invalidUTF8[0].bytes), seq(1, len(inScrape(invalidUTF8[0].bytes))-1)...),
			want: ws.StatusInvalidFramePayloadData},
		// Two halves of a code point in the wrong order.
		failCase{name: "halves-swapped-across-fragments", frames: split(inScrape("\x82\xac\xe2"), inScrapeAt, inScrapeAt+2), want: ws.StatusInvalidFramePayloadData},
	)
	runFailCases(t, shared, cases)
}

// TestUTF8TruncatedAtEnd: a message whose last code point is cut short is
// not UTF-8, even when every fragment up to the last was a valid prefix
// (Autobahn 6.6.x, 6.16.x).
func TestUTF8TruncatedAtEnd(t *testing.T) {
	t.Parallel()
	var cases []failCase
	for _, tail := range []string{"\xc3", "\xe2\x82", "\xf0\x9f\x98"} {
		name := fmt.Sprintf("%d-of-%d-bytes", len(tail), len(tail)+1)
		cases = append(cases,
			failCase{name: name + "-whole", frames: []frame{text(scrape + tail)}, want: ws.StatusInvalidFramePayloadData},
			failCase{name: name + "-in-the-last-fragment", frames: []frame{fragment(opText, scrape, false), fragment(opCont, tail, true)},
				want: ws.StatusInvalidFramePayloadData},
			failCase{name: name + "-then-empty-final-fragment", frames: []frame{fragment(opText, scrape+tail, false), fragment(opCont, "", true)},
				want: ws.StatusInvalidFramePayloadData},
		)
	}
	runFailCases(t, shared, cases)
}

// TestUTF8Valid: valid UTF-8, one code point of each length and the edges
// of the ranges, is answered, unfragmented and with code points split
// between fragments anywhere (Autobahn 6.2.1-6.2.4, 6.5, 6.7, 6.22).
func TestUTF8Valid(t *testing.T) {
	t.Parallel()
	var cases []okCase
	for name, s := range map[string]string{
		"6.2.1-kosme":    "κόσμε",
		"6.5.x-mixed":    "\x7f \u0080 \u07ff \u0800 \uffff \U00010000 \U0010ffff",
		"6.11.x-d7ff":    "\ud7ff \ue000",
		"6.22.x-nonchar": "\ufdd0 \ufffe \U0001fffe \U0010fffe",
		"euro-emoji":     "€😀",
	} {
		msg := inScrape(s)
		cases = append(cases,
			okCase{name + "-whole", []frame{text(msg)}},
			// 6.2.3, 6.2.4: fragmented into octets, so split inside every
			// code point.
			okCase{name + "-one-byte-fragments", split(msg, seq(1, len(msg)-1)...)},
		)
	}
	const prefix = inScrapeAt
	euro, emoji := inScrape("€"), inScrape("😀")
	cases = append(cases,
		okCase{"euro-split-1-2", split(euro, prefix+1)},
		okCase{"euro-split-2-1", split(euro, prefix+2)},
		okCase{"emoji-split-1-3", split(emoji, prefix+1)},
		okCase{"emoji-split-2-2", split(emoji, prefix+2)},
		okCase{"emoji-split-3-1", split(emoji, prefix+3)},
		okCase{"emoji-split-1-1-1-1", split(emoji, prefix+1, prefix+2, prefix+3)},
		okCase{"emoji-split-with-empty-fragment", split(emoji, prefix+2, prefix+2)},
		okCase{"emoji-split-with-a-pong", []frame{fragment(opText, emoji[:prefix+2], false), pong(nil), fragment(opCont, emoji[prefix+2:], true)}},
	)
	runOKCases(t, shared, cases)
}

// seq is from, from+1, ..., to.
func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// TestUTF8OfferNotRelayed: an announce whose offer (an SDP description,
// passed on to other peers as it is) is not UTF-8 fails the sender's
// connection with 1007, and the offer reaches nobody: the peer it would
// have gone to stays open and its next message is the next valid offer
// of the swarm.
func TestUTF8OfferNotRelayed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		sdp       string
		fragments bool
	}{
		{"ff", "v=0\\r\\no=- \xff 2 IN IP4 127.0.0.1", false},
		{"surrogate", "v=0 " + invalidUTF8[0].bytes, false},
		{"truncated-in-a-fragment", "v=0 \xe2\x82", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := id()
			receiver, receiverID := shared.open(t), id()
			receiver.send(textBytes(announce(h, receiverID)))
			receiver.expectAnnounceReply(h)

			bad, badID := shared.open(t), id()
			msg := announce(h, badID, offer{id: id(), sdp: []byte(tc.sdp)})
			if tc.fragments {
				bad.send(split(string(msg), len(msg)/2)...)
			} else {
				bad.send(textBytes(msg))
			}
			bad.expectClose(ws.StatusInvalidFramePayloadData)

			// The bad offer, relayed, would be on its way to the receiver
			// before the sender's close frame was sent, so ahead of what a
			// later sender relays.
			// Two offers, so that the receiver gets one even if the bad
			// sender were still taken for a peer of the swarm.
			good, goodID := shared.open(t), id()
			offers := []offer{{id: id(), sdp: []byte("v=0 good")}, {id: id(), sdp: []byte("v=0 good")}}
			good.send(textBytes(announce(h, goodID, offers...)))
			good.expectAnnounceReply(h)
			m := receiver.recvJSON()
			o, _ := m["offer"].(map[string]any)
			if m["peer_id"] != goodID || (m["offer_id"] != offers[0].id && m["offer_id"] != offers[1].id) || o == nil || o["sdp"] != "v=0 good" {
				t.Fatalf("the receiver got %v, want the good peer's offer", m)
			}
			receiver.alive()
		})
	}
}
