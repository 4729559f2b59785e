// Package wsproto reads and writes the WebTorrent tracker protocol: the
// JSON text messages browsers' BitTorrent clients exchange with a tracker
// over a WebSocket to find each other and trade WebRTC offers and answers,
// as npm bittorrent-tracker's server speaks it. It is pure: bytes in,
// values out, and back; the framing is the WebSocket frontend's.
//
// Both sides of the protocol are here, as in udpproto and httpproto: the
// server's (wsproto.go and scan.go read messages, encode.go writes
// replies) and the client's, for the load generator and the tests
// (client.go). Errors are *bittorrent.ClientError values, whose text the
// client gets back as the failure reason.
//
// info_hash, peer_id and offer_id are binary: 20 characters whose code
// points are 0 to 255, one byte each (Latin-1). They arrive as two-byte
// UTF-8 or \u00XX escapes and must go back byte for byte the same, so they
// are read as code points, never as UTF-8 bytes.
package wsproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Action is what a message asks.
type Action uint8

const (
	Announce Action = iota + 1
	Scrape
)

// MaxScrapeHashes bounds the info hashes of one scrape.
const MaxScrapeHashes = 64

// ID is a 20-byte binary string: info hash, peer id or offer id.
type ID = [20]byte

// Offer is a WebRTC offer for another peer, and the id its answer will
// carry. The offer itself (an SDP description) is passed on untouched.
type Offer struct {
	ID    ID
	Offer json.RawMessage
}

// Request is one message from a client.
type Request struct {
	Action Action
	// Announce.
	InfoHash bittorrent.InfoHash
	PeerID   bittorrent.PeerID
	// Left is what the client still has to download; unknown (a magnet
	// client without the metadata sends null) counts as a leecher.
	Left      uint64
	LeftKnown bool
	Event     bittorrent.Event
	Offers    []Offer
	// An answer to an offer, for the peer ToPeerID, and its offer's id.
	Answer   json.RawMessage
	OfferID  ID
	ToPeerID bittorrent.PeerID
	// Scrape.
	InfoHashes []bittorrent.InfoHash
}

// Errors, worded as the reference server words them where it has them.
// Each is a *bittorrent.ClientError, as the other protocols' are: its text
// goes back to the client as the failure reason, and it counts as a
// malformed request.
var (
	ErrInvalidJSON     = &bittorrent.ClientError{Message: "invalid JSON"}
	ErrInvalidInfoHash = &bittorrent.ClientError{Message: "invalid info_hash"}
	ErrInvalidPeerID   = &bittorrent.ClientError{Message: "invalid peer_id"}
	ErrInvalidToPeerID = &bittorrent.ClientError{Message: "invalid `to_peer_id` (required with `answer`)"}
	ErrInvalidOfferID  = &bittorrent.ClientError{Message: "invalid offer_id"}
	ErrInvalidLeft     = &bittorrent.ClientError{Message: "invalid left"}
	ErrInvalidEvent    = &bittorrent.ClientError{Message: "invalid event"}
	ErrInvalidOffer    = &bittorrent.ClientError{Message: "invalid offers: a list of {offer, offer_id}"}
	ErrTooManyHashes   = &bittorrent.ClientError{Message: fmt.Sprintf("too many info_hash values in scrape (at most %d)", MaxScrapeHashes)}
)

// invalidAction refuses an action the protocol does not have, naming it
// as the reference server does; only such a request allocates its error.
func invalidAction(action string) error {
	return &bittorrent.ClientError{Message: "invalid action in WS request: " + strconv.Quote(action)}
}

// wire is a message's members, each as the raw JSON of its value.
type wire struct {
	Action, InfoHash, PeerID, Left, Event, Offers, Answer, OfferID, ToPeerID json.RawMessage
}

// readWire picks the members the protocol knows from a JSON object; others
// are ignored, as are their values (checked as JSON all the same).
func readWire(msg []byte, w *wire) error {
	return eachMember(msg, func(key, value []byte) {
		for _, f := range [...]struct {
			name string
			dst  *json.RawMessage
		}{{"action", &w.Action}, {"info_hash", &w.InfoHash}, {"peer_id", &w.PeerID}, {"left", &w.Left}, {"event", &w.Event},
			{"offers", &w.Offers}, {"answer", &w.Answer}, {"offer_id", &w.OfferID}, {"to_peer_id", &w.ToPeerID}} {
			if nameIs(key, f.name) {
				*f.dst = value
				return
			}
		}
	})
}

// Parse reads one text message. maxOffers bounds the offers kept: a client
// may send more, as WebTorrent sends one per peer it wants, and the rest
// are ignored, as the reference server ignores those past its own bound.
func Parse(msg []byte, maxOffers int, r *Request) error {
	var w wire
	if err := readWire(msg, &w); err != nil {
		return err
	}
	*r = Request{}
	action, _ := stringValue(w.Action)
	switch action {
	case "announce":
		r.Action = Announce
		return parseAnnounce(&w, maxOffers, r)
	case "scrape":
		r.Action = Scrape
		return parseScrape(&w, r)
	}
	return invalidAction(action)
}

func parseAnnounce(w *wire, maxOffers int, r *Request) error {
	if !binaryID(w.InfoHash, (*ID)(&r.InfoHash)) {
		return ErrInvalidInfoHash
	}
	if !binaryID(w.PeerID, (*ID)(&r.PeerID)) {
		return ErrInvalidPeerID
	}
	if err := parseLeft(w.Left, r); err != nil {
		return err
	}
	if err := parseEvent(w.Event, r); err != nil {
		return err
	}
	if isPresent(w.Answer) {
		if !binaryID(w.ToPeerID, (*ID)(&r.ToPeerID)) {
			return ErrInvalidToPeerID
		}
		if !binaryID(w.OfferID, &r.OfferID) {
			return ErrInvalidOfferID
		}
		r.Answer = bytes.Clone(w.Answer)
	}
	if isPresent(w.Offers) {
		return parseOffers(w.Offers, maxOffers, r)
	}
	return nil
}

func parseLeft(raw json.RawMessage, r *Request) error {
	if !isPresent(raw) {
		return nil // unknown: a leecher
	}
	number := raw
	if raw[0] == '"' { // some clients send numbers as strings
		number = raw[1 : len(raw)-1]
	}
	f, err := strconv.ParseFloat(string(number), 64)
	if err != nil || f < 0 || f != f {
		return ErrInvalidLeft
	}
	r.Left, r.LeftKnown = uint64(min(f, 1<<62)), true
	return nil
}

func parseEvent(raw json.RawMessage, r *Request) error {
	if !isPresent(raw) {
		return nil
	}
	if raw[0] != '"' {
		return ErrInvalidEvent
	}
	switch event := string(raw[1 : len(raw)-1]); event {
	case "", "update", "empty":
		r.Event = bittorrent.EventNone
	case "paused":
		r.Event = bittorrent.EventPaused
	case "started":
		r.Event = bittorrent.EventStarted
	case "stopped":
		r.Event = bittorrent.EventStopped
	case "completed":
		r.Event = bittorrent.EventCompleted
	default:
		return ErrInvalidEvent
	}
	return nil
}

func parseOffers(raw json.RawMessage, maxOffers int, r *Request) error {
	r.Offers = make([]Offer, 0, min(maxOffers, 8))
	ok := eachElement(raw, func(element []byte) bool {
		var offer, offerID json.RawMessage
		if eachMember(element, func(key, value []byte) {
			switch {
			case nameIs(key, "offer"):
				offer = value
			case nameIs(key, "offer_id"):
				offerID = value
			}
		}) != nil {
			return false
		}
		if len(r.Offers) == maxOffers {
			return true // read, and ignored
		}
		var id ID
		if !isPresent(offer) || !binaryID(offerID, &id) {
			return false
		}
		r.Offers = append(r.Offers, Offer{ID: id, Offer: bytes.Clone(offer)})
		return true
	})
	if !ok {
		return ErrInvalidOffer
	}
	return nil
}

func parseScrape(w *wire, r *Request) error {
	if !isPresent(w.InfoHash) {
		return nil // the reference lists every torrent; trakx lists none
	}
	var one bittorrent.InfoHash
	if binaryID(w.InfoHash, (*ID)(&one)) {
		r.InfoHashes = []bittorrent.InfoHash{one}
		return nil
	}
	tooMany := false
	ok := eachElement(w.InfoHash, func(element []byte) bool {
		if len(r.InfoHashes) == MaxScrapeHashes {
			tooMany = true
			return false
		}
		var h bittorrent.InfoHash
		if !binaryID(element, (*ID)(&h)) {
			return false
		}
		r.InfoHashes = append(r.InfoHashes, h)
		return true
	})
	switch {
	case tooMany:
		return ErrTooManyHashes
	case !ok:
		return ErrInvalidInfoHash
	}
	return nil
}

func isPresent(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// binaryID reads a JSON string of exactly 20 code points, each at most
// 255, into id. It decodes the string itself rather than through
// encoding/json: every message carries two or three of them.
func binaryID(raw json.RawMessage, id *ID) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	b, n := raw[1:len(raw)-1], 0
	for len(b) > 0 {
		if n == len(id) {
			return false
		}
		c, size := rune(b[0]), 1
		switch {
		case c == '\\':
			if c, size = unescape(b); size == 0 {
				return false
			}
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			if c, size = utf8.DecodeRune(b); c == utf8.RuneError {
				return false
			}
		}
		if c > 0xff {
			return false
		}
		id[n] = byte(c)
		n++
		b = b[size:]
	}
	return n == len(id)
}

// unescape reads one JSON escape at the start of b (which begins with a
// backslash): the character and the escape's length, or 0 if malformed.
func unescape(b []byte) (rune, int) {
	if len(b) < 2 {
		return 0, 0
	}
	switch b[1] {
	case '"', '\\', '/':
		return rune(b[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		if len(b) < 6 {
			return 0, 0
		}
		v, err := strconv.ParseUint(string(b[2:6]), 16, 16)
		if err != nil {
			return 0, 0
		}
		return rune(v), 6 // a surrogate is over 255, and refused by the caller
	}
	return 0, 0
}
