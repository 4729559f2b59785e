// Package udpproto reads and writes the packets of the UDP tracker protocol
// (BEP 15). It is pure: bytes in, domain values out, and back. Both sides are
// here, the tracker's and the client's, so that each can be tested against
// the other.
package udpproto

import (
	"encoding/binary"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// ProtocolID is the magic a connect request carries instead of a connection id.
const ProtocolID uint64 = 0x41727101980

// Action is the kind of a packet.
type Action uint32

const (
	ActionConnect  Action = 0
	ActionAnnounce Action = 1
	ActionScrape   Action = 2
	ActionError    Action = 3
)

// Sizes of the fixed parts of BEP 15 packets.
const (
	headerSize          = 16
	announceRequestSize = 98
	// MaxScrapeHashes is the most info hashes one scrape may carry: the
	// number that fits a packet of an Ethernet MTU, as BEP 15 says.
	MaxScrapeHashes = 74
	// MaxRequestSize is the largest request worth reading: a full scrape.
	MaxRequestSize = headerSize + MaxScrapeHashes*20
)

// Errors a client is told about. They are values, so sending one costs no
// allocation.
var (
	ErrShortPacket   = &bittorrent.ClientError{Message: "packet too short"}
	ErrUnknownAction = &bittorrent.ClientError{Message: "unknown action"}
	ErrBadEvent      = &bittorrent.ClientError{Message: "invalid event"}
	ErrBadPort       = &bittorrent.ClientError{Message: "invalid port"}
	ErrNoInfoHash    = &bittorrent.ClientError{Message: "no info hash"}
	ErrTooManyHashes = &bittorrent.ClientError{Message: "too many info hashes (at most 74)"}
	ErrRaggedScrape  = &bittorrent.ClientError{Message: "scrape length is not a whole number of info hashes"}
	ErrBadResponse   = &bittorrent.ClientError{Message: "malformed response"}
)

// Header is the start of every request.
type Header struct {
	ConnectionID  uint64
	Action        Action
	TransactionID uint32
}

// ParseHeader reads the 16 bytes every request starts with.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < headerSize {
		return Header{}, ErrShortPacket
	}
	return Header{
		ConnectionID:  binary.BigEndian.Uint64(b[0:8]),
		Action:        Action(binary.BigEndian.Uint32(b[8:12])),
		TransactionID: binary.BigEndian.Uint32(b[12:16]),
	}, nil
}

// ParseAnnounce reads an announce request into req. It sets neither the
// client's address, which the socket gives, nor BothFamilies. Bytes after the
// fixed part (BEP 41 options such as the URL data) are tolerated and ignored;
// so is the IP field, since a client may not choose the address it is
// announced at.
func ParseAnnounce(b []byte, req *bittorrent.AnnounceRequest) error {
	if len(b) < announceRequestSize {
		return ErrShortPacket
	}
	copy(req.InfoHash[:], b[16:36])
	copy(req.PeerID[:], b[36:56])
	req.Downloaded = binary.BigEndian.Uint64(b[56:64])
	req.Left = binary.BigEndian.Uint64(b[64:72])
	req.Uploaded = binary.BigEndian.Uint64(b[72:80])
	event := binary.BigEndian.Uint32(b[80:84])
	// 4 is libtorrent's paused (BEP 21), sent by every partial seed. A
	// number beyond it is no client's: it is refused with a BEP 15 error,
	// which the client shows and trakx.udp.bad_request counts, rather than
	// guessed at (were it a stop, serving it would keep a departed peer).
	if event > uint32(bittorrent.EventPaused) {
		return ErrBadEvent
	}
	req.Event = bittorrent.Event(event)
	req.Key = binary.BigEndian.Uint32(b[88:92])
	req.NumWant = int32(binary.BigEndian.Uint32(b[92:96]))
	req.Port = binary.BigEndian.Uint16(b[96:98])
	if req.Port == 0 {
		return ErrBadPort
	}
	return nil
}

// ParseScrape appends the info hashes of a scrape request to dst.
func ParseScrape(b []byte, dst []bittorrent.InfoHash) ([]bittorrent.InfoHash, error) {
	body := b[min(len(b), headerSize):]
	switch {
	case len(b) < headerSize:
		return dst, ErrShortPacket
	case len(body) == 0:
		return dst, ErrNoInfoHash
	case len(body)%20 != 0:
		return dst, ErrRaggedScrape
	case len(body)/20 > MaxScrapeHashes:
		return dst, ErrTooManyHashes
	}
	for ; len(body) > 0; body = body[20:] {
		dst = append(dst, bittorrent.InfoHash(body[:20]))
	}
	return dst, nil
}

func appendHeader(dst []byte, action Action, tx uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(action))
	return binary.BigEndian.AppendUint32(dst, tx)
}

// AppendConnectResponse appends a connect reply.
func AppendConnectResponse(dst []byte, tx uint32, connectionID uint64) []byte {
	dst = appendHeader(dst, ActionConnect, tx)
	return binary.BigEndian.AppendUint64(dst, connectionID)
}

// MaxPeers is the most peers an announce reply may carry so that it is
// never fragmented: an IPv4 reply within 1472 bytes of UDP payload (a
// 1500-byte Ethernet MTU less headers, 242 peers), an IPv6 reply within
// 1232 (the IPv6 minimum MTU of 1280 less headers, 67 peers).
func MaxPeers(ipv6 bool) int32 {
	if ipv6 {
		return (1232 - 20) / 18
	}
	return (1472 - 20) / 6
}

// AppendAnnounceResponse appends an announce reply with the peers of one
// family: 6-byte peers for an IPv4 client, 18-byte peers for an IPv6 one.
func AppendAnnounceResponse(dst []byte, tx uint32, resp *bittorrent.AnnounceResponse, ipv6 bool) []byte {
	dst = appendHeader(dst, ActionAnnounce, tx)
	dst = binary.BigEndian.AppendUint32(dst, uint32(resp.Interval/time.Second))
	dst = binary.BigEndian.AppendUint32(dst, resp.Incomplete)
	dst = binary.BigEndian.AppendUint32(dst, resp.Complete)
	if ipv6 {
		for i := range resp.Peers6 {
			dst = append(dst, resp.Peers6[i].IP[:]...)
			dst = binary.BigEndian.AppendUint16(dst, resp.Peers6[i].Port)
		}
		return dst
	}
	for i := range resp.Peers4 {
		dst = append(dst, resp.Peers4[i].IP[:]...)
		dst = binary.BigEndian.AppendUint16(dst, resp.Peers4[i].Port)
	}
	return dst
}

// AppendScrapeResponseHeader starts a scrape reply; AppendScrapeStats then
// adds each torrent's figures in the order they were asked for.
func AppendScrapeResponseHeader(dst []byte, tx uint32) []byte {
	return appendHeader(dst, ActionScrape, tx)
}

// AppendScrapeStats adds one torrent to a scrape reply: seeders,
// completed, leechers. BEP 15's reply has no room for BEP 21's
// downloaders: st.Downloaders is left out, partial seeds counted among the
// leechers.
func AppendScrapeStats(dst []byte, st bittorrent.ScrapeStats) []byte {
	dst = binary.BigEndian.AppendUint32(dst, st.Complete)
	dst = binary.BigEndian.AppendUint32(dst, st.Downloaded)
	return binary.BigEndian.AppendUint32(dst, st.Incomplete)
}

// AppendError appends an error reply with a message for people to read.
func AppendError(dst []byte, tx uint32, message string) []byte {
	dst = appendHeader(dst, ActionError, tx)
	return append(dst, message...)
}
