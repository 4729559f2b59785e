// Package httpproto reads tracker query strings (BEP 3, 23, 48, 52) and
// writes bencoded replies (BEP 3, 7, 21, 23, 48). An info_hash of 32 bytes
// (a v2 hash, BEP 52) is taken by its first 20, as BEP 52 has trackers do;
// a scrape reply keys each entry by the info_hash as the client sent it. It is pure: bytes in, domain values
// out, and back; the HTTP framing lives in the frontend.
//
// Both sides of the protocol are here, as in udpproto and wsproto: the
// server's (query.go reads requests, bencode.go writes replies) and the
// client's, for the load generator and the tests (client.go writes queries
// and reads responses; decode.go reads any bencoded value). Round-trip
// tests hold each side to the other.
package httpproto

import (
	"bytes"
	"net/netip"
	"slices"

	"github.com/trakx/trakx/internal/bittorrent"
)

// MaxScrapeHashes bounds the info hashes one scrape may ask for.
const MaxScrapeHashes = 128

// Errors a client is told about, as bencoded failure reasons. They are
// values, so sending one costs no allocation.
var (
	ErrMissingInfoHash  = &bittorrent.ClientError{Message: "missing info_hash"}
	ErrMissingPeerID    = &bittorrent.ClientError{Message: "missing peer_id"}
	ErrMissingPort      = &bittorrent.ClientError{Message: "missing port"}
	ErrMissingLeft      = &bittorrent.ClientError{Message: "missing left"}
	ErrBadInfoHash      = &bittorrent.ClientError{Message: "info_hash must be 20 bytes, or 32 (a v2 hash, BEP 52)"}
	ErrBadPeerID        = &bittorrent.ClientError{Message: "peer_id must be 20 bytes"}
	ErrBadPort          = &bittorrent.ClientError{Message: "invalid port"}
	ErrBadNumber        = &bittorrent.ClientError{Message: "invalid number in uploaded, downloaded, left or numwant"}
	ErrBadEvent         = &bittorrent.ClientError{Message: "invalid event"}
	ErrBadEscape        = &bittorrent.ClientError{Message: "malformed percent-encoding"}
	ErrRepeatedInfoHash = &bittorrent.ClientError{Message: "announce with more than one info_hash"}
	ErrTooManyHashes    = &bittorrent.ClientError{Message: "too many info_hash values in scrape"}
)

// AnnounceOptions are the announce parameters that shape the reply's
// encoding rather than the swarm.
type AnnounceOptions struct {
	Compact bool // 6- and 18-byte peer strings (BEP 23, BEP 7)
	// IP is the address the ip parameter claims, if any. The frontend
	// believes it only from a trusted proxy.
	IP netip.Addr
}

// nextParam splits the first key=value pair off a query string.
func nextParam(q []byte) (key, value, rest []byte) {
	pair := q
	if i := bytes.IndexByte(q, '&'); i >= 0 {
		pair, rest = q[:i], q[i+1:]
	}
	key = pair
	if i := bytes.IndexByte(pair, '='); i >= 0 {
		key, value = pair[:i], pair[i+1:]
	}
	return key, value, rest
}

// ParseAnnounce reads an announce query string (what follows the '?') into
// req. It sets neither the client's address, which the connection gives,
// nor BothFamilies. Unknown parameters are ignored; ip is read into opts
// but not believed here: a client may not choose the address it is
// announced at, only a trusted proxy may say it for one.
func ParseAnnounce(query []byte, req *bittorrent.AnnounceRequest, opts *AnnounceOptions) error {
	*req = bittorrent.AnnounceRequest{NumWant: -1}
	*opts = AnnounceOptions{Compact: true}
	var haveHash, havePeerID, havePort, haveLeft bool
	for q := query; len(q) > 0; {
		var key, value []byte
		key, value, q = nextParam(q)
		var err error
		switch string(key) {
		case "info_hash":
			if haveHash {
				return ErrRepeatedInfoHash
			}
			haveHash = true
			var key ScrapeKey
			err = key.unescape(value)
			req.InfoHash = *key.InfoHash()
		case "peer_id":
			havePeerID = true
			err = unescape20(value, (*[20]byte)(&req.PeerID), ErrBadPeerID)
		case "port":
			havePort = true
			req.Port, err = parsePort(value)
		case "uploaded":
			req.Uploaded, err = parseUint(value, 1<<63-1)
		case "downloaded":
			req.Downloaded, err = parseUint(value, 1<<63-1)
		case "left":
			haveLeft = true
			req.Left, err = parseUint(value, 1<<63-1)
		case "numwant":
			req.NumWant, err = parseNumWant(value)
		case "event":
			req.Event, err = parseEvent(value)
		case "compact":
			opts.Compact = string(value) != "0"
		case "ip":
			if ip, ok := parseIP(value); ok {
				opts.IP = ip
			}
		}
		if err != nil {
			return err
		}
	}
	switch {
	case !haveHash:
		return ErrMissingInfoHash
	case !havePeerID:
		return ErrMissingPeerID
	case !havePort:
		return ErrMissingPort
	case !haveLeft:
		return ErrMissingLeft
	}
	return nil
}

// parsePort reads a port, which may not be 0.
func parsePort(v []byte) (uint16, error) {
	port, err := parseUint(v, 65535)
	if err != nil || port == 0 {
		return 0, ErrBadPort
	}
	return uint16(port), nil
}

// parseNumWant reads numwant. A negative one (some clients send -1) asks
// for the default, as no numwant does.
func parseNumWant(v []byte) (int32, error) {
	negative := len(v) > 1 && v[0] == '-'
	if negative {
		v = v[1:]
	}
	n, err := parseCount(v, 1<<31-1)
	if negative {
		return -1, err
	}
	return int32(n), err
}

// parseIP reads the address the ip parameter claims, if it is one.
func parseIP(v []byte) (netip.Addr, bool) {
	var text [64]byte
	if n, err := Unescape(v, text[:]); err == nil && n <= len(text) {
		if a, err := netip.ParseAddr(string(text[:n])); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// ScrapeKey is one info_hash of a request as the client sent it: 20 bytes,
// or 32 (a v2 hash, BEP 52), of which the tracker looks up the first 20.
// A scrape reply keys the torrent's entry by all of it.
type ScrapeKey struct {
	raw [32]byte
	n   uint8
}

// InfoHash is the torrent the tracker looks up: the first 20 bytes.
func (k *ScrapeKey) InfoHash() *bittorrent.InfoHash { return (*bittorrent.InfoHash)(k.raw[:20]) }

// Bytes is the info_hash as the client sent it: 20 or 32 bytes.
func (k *ScrapeKey) Bytes() []byte { return k.raw[:k.n] }

// KeyOf is the ScrapeKey of a 20-byte info hash.
func KeyOf(h bittorrent.InfoHash) (k ScrapeKey) {
	copy(k.raw[:], h[:])
	k.n = 20
	return k
}

// unescape percent-decodes an info_hash value, which must be 20 or 32
// bytes.
func (k *ScrapeKey) unescape(v []byte) error {
	n, err := Unescape(v, k.raw[:])
	if err != nil {
		return err
	}
	if n != 20 && n != 32 {
		return ErrBadInfoHash
	}
	k.n = uint8(n)
	return nil
}

// ParseScrape appends the info hashes of a scrape query string to dst, as
// the client sent them, sorted and without repeats, as the bencoded
// reply's dictionary needs them.
func ParseScrape(query []byte, dst []ScrapeKey) ([]ScrapeKey, error) {
	start := len(dst)
	for q := query; len(q) > 0; {
		var key, value []byte
		key, value, q = nextParam(q)
		if string(key) != "info_hash" {
			continue
		}
		if len(dst)-start == MaxScrapeHashes {
			return dst, ErrTooManyHashes
		}
		var k ScrapeKey
		if err := k.unescape(value); err != nil {
			return dst, err
		}
		dst = append(dst, k)
	}
	if len(dst) == start {
		return dst, ErrMissingInfoHash
	}
	keys := dst[start:]
	slices.SortFunc(keys, func(a, b ScrapeKey) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	return dst[:start+len(slices.Compact(keys))], nil
}

func parseEvent(v []byte) (bittorrent.Event, error) {
	switch string(v) {
	case "", "empty":
		return bittorrent.EventNone, nil
	case "paused":
		return bittorrent.EventPaused, nil
	case "started":
		return bittorrent.EventStarted, nil
	case "stopped":
		return bittorrent.EventStopped, nil
	case "completed":
		return bittorrent.EventCompleted, nil
	}
	return 0, ErrBadEvent
}

// parseUint reads a plain decimal number no larger than limit.
func parseUint(v []byte, limit uint64) (uint64, error) {
	if len(v) == 0 || len(v) > 20 {
		return 0, ErrBadNumber
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, ErrBadNumber
		}
		d := uint64(c - '0')
		if n > (limit-d)/10 {
			return 0, ErrBadNumber
		}
		n = n*10 + d
	}
	return n, nil
}

// parseCount reads a plain decimal number of any length, capped at limit:
// a client that asks for more than there can ever be asks for the most,
// however many digits it takes to say so. limit is at most 1<<60, so that
// n*10+9 cannot overflow.
func parseCount(v []byte, limit uint64) (uint64, error) {
	if len(v) == 0 {
		return 0, ErrBadNumber
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, ErrBadNumber
		}
		n = min(n*10+uint64(c-'0'), limit)
	}
	return n, nil
}

// unescape20 percent-decodes v into dst, which it must fill exactly.
func unescape20(v []byte, dst *[20]byte, wrongSize error) error {
	n, err := Unescape(v, dst[:])
	if err != nil {
		return err
	}
	if n != len(dst) {
		return wrongSize
	}
	return nil
}

// Unescape percent-decodes a query value into dst ('+' is a space, as in
// form encoding) and returns the length decoded. A value that decodes to
// more than len(dst) bytes reports len(dst)+1, so a caller can tell it was
// too long without any allocation.
func Unescape(v []byte, dst []byte) (int, error) {
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '%':
			if i+2 >= len(v) {
				return 0, ErrBadEscape
			}
			hi, ok1 := fromHex(v[i+1])
			lo, ok2 := fromHex(v[i+2])
			if !ok1 || !ok2 {
				return 0, ErrBadEscape
			}
			c = hi<<4 | lo
			i += 2
		case '+':
			c = ' '
		}
		if n == len(dst) {
			return n + 1, nil
		}
		dst[n] = c
		n++
	}
	return n, nil
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
