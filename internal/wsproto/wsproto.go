// Package wsproto reads and writes the WebTorrent tracker protocol: the
// JSON text messages browsers' BitTorrent clients exchange with a tracker
// over a WebSocket to find each other and trade WebRTC offers and answers,
// as npm bittorrent-tracker's server speaks it. It is pure: bytes in,
// values out, and back; the framing is the WebSocket frontend's.
//
// info_hash, peer_id and offer_id are binary: 20 characters whose code
// points are 0 to 255, one byte each (Latin-1). They arrive as two-byte
// UTF-8 or \u00XX escapes and must go back byte for byte the same, so they
// are read as code points, never as UTF-8 bytes.
package wsproto

import (
	"encoding/json"
	"errors"
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
var (
	ErrInvalidInfoHash = errors.New("invalid info_hash")
	ErrInvalidPeerID   = errors.New("invalid peer_id")
	ErrInvalidToPeerID = errors.New("invalid `to_peer_id` (required with `answer`)")
	ErrInvalidOfferID  = errors.New("invalid offer_id")
	ErrInvalidEvent    = errors.New("invalid event")
	ErrInvalidOffer    = errors.New("invalid offers: a list of {offer, offer_id}")
	ErrTooManyHashes   = fmt.Errorf("too many info_hash values in scrape (at most %d)", MaxScrapeHashes)
)

// wire is a message as JSON has it.
type wire struct {
	Action   string          `json:"action"`
	InfoHash json.RawMessage `json:"info_hash"`
	PeerID   json.RawMessage `json:"peer_id"`
	Left     json.RawMessage `json:"left"`
	Event    json.RawMessage `json:"event"`
	Offers   json.RawMessage `json:"offers"`
	Answer   json.RawMessage `json:"answer"`
	OfferID  json.RawMessage `json:"offer_id"`
	ToPeerID json.RawMessage `json:"to_peer_id"`
}

// Parse reads one text message. maxOffers bounds the offers kept: a client
// may send more, as WebTorrent sends one per peer it wants, and the rest
// are ignored, as the reference server ignores those past its own bound.
func Parse(msg []byte, maxOffers int, r *Request) error {
	var w wire
	if err := json.Unmarshal(msg, &w); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	*r = Request{}
	switch w.Action {
	case "announce":
		r.Action = Announce
		return parseAnnounce(&w, maxOffers, r)
	case "scrape":
		r.Action = Scrape
		return parseScrape(&w, r)
	}
	return fmt.Errorf("invalid action in WS request: %s", strconv.Quote(w.Action))
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
		r.Answer = w.Answer
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
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f < 0 {
		var s string // some clients send numbers as strings
		if json.Unmarshal(raw, &s) != nil {
			return errors.New("invalid left")
		}
		if f, err = strconv.ParseFloat(s, 64); err != nil || f < 0 {
			return errors.New("invalid left")
		}
	}
	r.Left, r.LeftKnown = uint64(min(f, 1<<62)), true
	return nil
}

func parseEvent(raw json.RawMessage, r *Request) error {
	if !isPresent(raw) {
		return nil
	}
	var event string
	if json.Unmarshal(raw, &event) != nil {
		return ErrInvalidEvent
	}
	switch event {
	case "", "update", "empty", "paused":
		r.Event = bittorrent.EventNone
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
	var offers []struct {
		Offer   json.RawMessage `json:"offer"`
		OfferID json.RawMessage `json:"offer_id"`
	}
	if err := json.Unmarshal(raw, &offers); err != nil {
		return ErrInvalidOffer
	}
	r.Offers = make([]Offer, 0, min(len(offers), maxOffers))
	for _, o := range offers[:min(len(offers), maxOffers)] {
		var id ID
		if !isPresent(o.Offer) || !binaryID(o.OfferID, &id) {
			return ErrInvalidOffer
		}
		r.Offers = append(r.Offers, Offer{ID: id, Offer: o.Offer})
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
	var list []json.RawMessage
	if json.Unmarshal(w.InfoHash, &list) != nil {
		return ErrInvalidInfoHash
	}
	if len(list) > MaxScrapeHashes {
		return ErrTooManyHashes
	}
	r.InfoHashes = make([]bittorrent.InfoHash, len(list))
	for i, raw := range list {
		if !binaryID(raw, (*ID)(&r.InfoHashes[i])) {
			return ErrInvalidInfoHash
		}
	}
	return nil
}

func isPresent(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// binaryID reads a JSON string of exactly 20 code points, each at most
// 255, into id.
func binaryID(raw json.RawMessage, id *ID) bool {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return false
	}
	if utf8.RuneCountInString(s) != len(id) {
		return false
	}
	i := 0
	for _, c := range s {
		if c > 0xff {
			return false
		}
		id[i] = byte(c)
		i++
	}
	return true
}
