package wsproto

import (
	"bytes"
	"strconv"

	"github.com/trakx/trakx/internal/bittorrent"
)

// The client's side of the protocol, for the load generator and the tests.

// AppendAnnounceRequest appends a WebTorrent announce without offers, as a
// browser sends one to refresh its place in a swarm: {"action":"announce",
// "info_hash":…,"peer_id":…,"numwant":0,"uploaded":0,"downloaded":0,
// "left":…}.
func AppendAnnounceRequest(dst []byte, h *bittorrent.InfoHash, id *bittorrent.PeerID, left uint64) []byte {
	dst = append(dst, `{"action":"announce","info_hash":`...)
	dst = AppendBinary(dst, h[:])
	dst = append(dst, `,"peer_id":`...)
	dst = AppendBinary(dst, id[:])
	dst = append(dst, `,"numwant":0,"uploaded":0,"downloaded":0,"left":`...)
	dst = strconv.AppendUint(dst, left, 10)
	return append(dst, '}')
}

// IsFailure reports whether a message from the tracker refuses the request
// (it carries a "failure reason", AppendFailure's).
func IsFailure(reply []byte) bool {
	return bytes.Contains(reply, []byte(`"failure reason"`))
}
