package wsproto

import (
	"encoding/json"
	"strconv"

	"github.com/trakx/trakx/internal/bittorrent"
)

// AppendBinary appends b as a JSON string of one code point per byte
// (Latin-1), as the reference server writes binary strings: control bytes,
// quote and backslash escaped, bytes from 0x80 as two-byte UTF-8.
func AppendBinary(dst []byte, b []byte) []byte {
	dst = append(dst, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7f:
			dst = append(dst, `\u00`...)
			dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		case c < 0x80:
			dst = append(dst, c)
		default:
			dst = append(dst, 0xc0|c>>6, 0x80|c&0x3f)
		}
	}
	return append(dst, '"')
}

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // cannot fail for a string
	return append(dst, b...)
}

// AnnounceReply is the answer to an announce.
type AnnounceReply struct {
	InfoHash             bittorrent.InfoHash
	Interval             int // seconds
	Complete, Incomplete uint32
}

// AppendAnnounceReply appends {"action":"announce","interval":…,
// "info_hash":…,"complete":…,"incomplete":…}.
func AppendAnnounceReply(dst []byte, r *AnnounceReply) []byte {
	dst = append(dst, `{"action":"announce","interval":`...)
	dst = strconv.AppendInt(dst, int64(r.Interval), 10)
	dst = append(dst, `,"info_hash":`...)
	dst = AppendBinary(dst, r.InfoHash[:])
	dst = append(dst, `,"complete":`...)
	dst = strconv.AppendUint(dst, uint64(r.Complete), 10)
	dst = append(dst, `,"incomplete":`...)
	dst = strconv.AppendUint(dst, uint64(r.Incomplete), 10)
	return append(dst, '}')
}

// AppendOffer appends the message that hands a peer another's offer:
// {"action":"announce","offer":…,"offer_id":…,"peer_id":…,"info_hash":…},
// peer_id being the offering peer's.
func AppendOffer(dst []byte, offer *Offer, from *bittorrent.PeerID, h *bittorrent.InfoHash) []byte {
	dst = append(dst, `{"action":"announce","offer":`...)
	dst = append(dst, offer.Offer...)
	return appendIDs(dst, offer.ID[:], from, h)
}

// AppendAnswer appends the message that hands a peer the answer to its
// offer: {"action":"announce","answer":…,"offer_id":…,"peer_id":…,
// "info_hash":…}, peer_id being the answering peer's.
func AppendAnswer(dst []byte, r *Request) []byte {
	dst = append(dst, `{"action":"announce","answer":`...)
	dst = append(dst, r.Answer...)
	return appendIDs(dst, r.OfferID[:], &r.PeerID, &r.InfoHash)
}

func appendIDs(dst []byte, offerID []byte, from *bittorrent.PeerID, h *bittorrent.InfoHash) []byte {
	dst = append(dst, `,"offer_id":`...)
	dst = AppendBinary(dst, offerID)
	dst = append(dst, `,"peer_id":`...)
	dst = AppendBinary(dst, from[:])
	dst = append(dst, `,"info_hash":`...)
	dst = AppendBinary(dst, h[:])
	return append(dst, '}')
}

// ScrapeFile is one torrent's figures in a scrape reply.
type ScrapeFile struct {
	InfoHash bittorrent.InfoHash
	bittorrent.ScrapeStats
}

// AppendScrapeReply appends {"action":"scrape","files":{info_hash:
// {"complete":…,"incomplete":…,"downloaded":…},…},"flags":
// {"min_request_interval":…}}.
func AppendScrapeReply(dst []byte, files []ScrapeFile, minInterval int) []byte {
	dst = append(dst, `{"action":"scrape","files":{`...)
	for i := range files {
		if i > 0 {
			dst = append(dst, ',')
		}
		f := &files[i]
		dst = AppendBinary(dst, f.InfoHash[:])
		dst = append(dst, `:{"complete":`...)
		dst = strconv.AppendUint(dst, uint64(f.Complete), 10)
		dst = append(dst, `,"incomplete":`...)
		dst = strconv.AppendUint(dst, uint64(f.Incomplete), 10)
		dst = append(dst, `,"downloaded":`...)
		dst = strconv.AppendUint(dst, uint64(f.Downloaded), 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `},"flags":{"min_request_interval":`...)
	dst = strconv.AppendInt(dst, int64(minInterval), 10)
	return append(dst, "}}"...)
}

// AppendFailure appends {"failure reason":…}, with the action and info
// hash it concerns when known (h not nil), as the reference server does
// for refused requests.
func AppendFailure(dst []byte, reason string, action Action, h *bittorrent.InfoHash) []byte {
	dst = append(dst, '{')
	if action != 0 {
		dst = append(dst, `"action":`...)
		dst = AppendString(dst, map[Action]string{Announce: "announce", Scrape: "scrape"}[action])
		dst = append(dst, ',')
	}
	dst = append(dst, `"failure reason":`...)
	dst = AppendString(dst, reason)
	if h != nil {
		dst = append(dst, `,"info_hash":`...)
		dst = AppendBinary(dst, h[:])
	}
	return append(dst, '}')
}
