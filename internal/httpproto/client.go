package httpproto

import (
	"bytes"
	"strconv"

	"github.com/trakx/trakx/internal/bittorrent"
)

// The client's side of the protocol, for the load generator and the tests.

const hexDigits = "0123456789ABCDEF"

// AppendEscaped percent-encodes every byte: valid for any tracker, and
// what many clients send for binary hashes.
func AppendEscaped(dst []byte, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// AppendAnnounceQuery appends the query string of a compact announce
// (what follows "/announce?"): info_hash, peer_id, port, uploaded and
// downloaded (0), left and numwant.
func AppendAnnounceQuery(dst []byte, req *bittorrent.AnnounceRequest) []byte {
	dst = append(dst, "info_hash="...)
	dst = AppendEscaped(dst, req.InfoHash[:])
	dst = append(dst, "&peer_id="...)
	dst = AppendEscaped(dst, req.PeerID[:])
	dst = append(dst, "&port="...)
	dst = strconv.AppendUint(dst, uint64(req.Port), 10)
	dst = append(dst, "&uploaded=0&downloaded=0&left="...)
	dst = strconv.AppendUint(dst, req.Left, 10)
	dst = append(dst, "&numwant="...)
	dst = strconv.AppendInt(dst, int64(req.NumWant), 10)
	return append(dst, "&compact=1"...)
}

// AppendScrapeQuery appends the query string of a scrape of hashes (what
// follows "/scrape?"): one info_hash each.
func AppendScrapeQuery(dst []byte, hashes []bittorrent.InfoHash) []byte {
	for i := range hashes {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, "info_hash="...)
		dst = AppendEscaped(dst, hashes[i][:])
	}
	return dst
}

// IsFailure reports whether a bencoded reply is a failure reason
// (AppendFailure's).
func IsFailure(body []byte) bool {
	return bytes.HasPrefix(body, []byte("d14:failure reason"))
}

// CountCompactPeers is how many IPv4 peers a compact announce reply's
// "peers" string holds (6 bytes each); 0 if it has none.
func CountCompactPeers(body []byte) int {
	i := bytes.Index(body, []byte("5:peers"))
	if i < 0 {
		return 0
	}
	rest := body[i+len("5:peers"):]
	colon := bytes.IndexByte(rest, ':')
	if colon < 0 {
		return 0
	}
	n, _ := strconv.Atoi(string(rest[:colon]))
	return n / 6
}

// ErrBadResponse is a reply that is not an HTTP response a tracker sends.
var ErrBadResponse = &bittorrent.ClientError{Message: "malformed HTTP response"}

// ParseResponse reads the first HTTP response in b: how many bytes it
// takes (0 if it is not all there yet), its body, and whether the
// connection carries more. A response without a length ends with the
// connection (eof: b is all there will be).
func ParseResponse(b []byte, eof bool) (used int, body []byte, keep bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if eof && len(b) > 0 {
			return 0, nil, false, ErrBadResponse
		}
		return 0, nil, false, nil
	}
	head := bytes.ToLower(b[:end])
	keep = !bytes.Contains(head, []byte("connection: close")) && bytes.HasPrefix(head, []byte("http/1.1"))
	start := end + 4
	length, known, err := contentLength(head)
	switch {
	case err != nil:
		return 0, nil, false, err
	case !known && !eof:
		return 0, nil, false, nil
	case !known:
		return len(b), b[start:], false, nil
	case len(b)-start >= length:
		return start + length, b[start : start+length], keep, nil
	case eof:
		return 0, nil, false, ErrBadResponse
	}
	return 0, nil, false, nil
}

// contentLength reads a lower-cased response head's Content-Length, and
// whether it has one.
func contentLength(head []byte) (length int, known bool, err error) {
	i := bytes.Index(head, []byte("content-length:"))
	if i < 0 {
		return 0, false, nil
	}
	rest := head[i+len("content-length:"):]
	if j := bytes.IndexByte(rest, '\r'); j >= 0 {
		rest = rest[:j]
	}
	length, err = strconv.Atoi(string(bytes.TrimSpace(rest)))
	if err != nil || length < 0 {
		return 0, false, ErrBadResponse
	}
	return length, true, nil
}
