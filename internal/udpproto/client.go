package udpproto

import (
	"encoding/binary"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// The client's side of BEP 15, for the load generator and the tests.

// AppendConnectRequest appends a connect request.
func AppendConnectRequest(dst []byte, tx uint32) []byte {
	dst = binary.BigEndian.AppendUint64(dst, ProtocolID)
	return appendHeader(dst, ActionConnect, tx)
}

// AppendAnnounceRequest appends an announce request; the IP field is zero.
func AppendAnnounceRequest(dst []byte, connectionID uint64, tx uint32, req *bittorrent.AnnounceRequest) []byte {
	dst = binary.BigEndian.AppendUint64(dst, connectionID)
	dst = appendHeader(dst, ActionAnnounce, tx)
	dst = append(dst, req.InfoHash[:]...)
	dst = append(dst, req.PeerID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, req.Downloaded)
	dst = binary.BigEndian.AppendUint64(dst, req.Left)
	dst = binary.BigEndian.AppendUint64(dst, req.Uploaded)
	dst = binary.BigEndian.AppendUint32(dst, uint32(req.Event))
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, req.Key)
	dst = binary.BigEndian.AppendUint32(dst, uint32(req.NumWant))
	return binary.BigEndian.AppendUint16(dst, req.Port)
}

// AppendScrapeRequest appends a scrape request for hashes.
func AppendScrapeRequest(dst []byte, connectionID uint64, tx uint32, hashes []bittorrent.InfoHash) []byte {
	dst = binary.BigEndian.AppendUint64(dst, connectionID)
	dst = appendHeader(dst, ActionScrape, tx)
	for i := range hashes {
		dst = append(dst, hashes[i][:]...)
	}
	return dst
}

// ResponseHeader is the start of every reply.
type ResponseHeader struct {
	Action        Action
	TransactionID uint32
}

// ParseResponseHeader reads the 8 bytes every reply starts with.
func ParseResponseHeader(b []byte) (ResponseHeader, error) {
	if len(b) < 8 {
		return ResponseHeader{}, ErrShortPacket
	}
	return ResponseHeader{
		Action:        Action(binary.BigEndian.Uint32(b[0:4])),
		TransactionID: binary.BigEndian.Uint32(b[4:8]),
	}, nil
}

// ParseConnectResponse returns the connection id of a connect reply.
func ParseConnectResponse(b []byte) (uint64, error) {
	if len(b) < 16 {
		return 0, ErrShortPacket
	}
	return binary.BigEndian.Uint64(b[8:16]), nil
}

// ParseAnnounceResponse reads an announce reply into resp. ipv6 says which
// peer size to expect, as the reply itself does not.
func ParseAnnounceResponse(b []byte, resp *bittorrent.AnnounceResponse, ipv6 bool) error {
	resp.Reset()
	if len(b) < 20 {
		return ErrShortPacket
	}
	resp.Interval = time.Duration(binary.BigEndian.Uint32(b[8:12])) * time.Second
	resp.Incomplete = binary.BigEndian.Uint32(b[12:16])
	resp.Complete = binary.BigEndian.Uint32(b[16:20])
	peers := b[20:]
	size := 6
	if ipv6 {
		size = 18
	}
	if len(peers)%size != 0 {
		return ErrBadResponse
	}
	for ; len(peers) > 0; peers = peers[size:] {
		port := binary.BigEndian.Uint16(peers[size-2:])
		if ipv6 {
			resp.Peers6 = append(resp.Peers6, bittorrent.Peer6{IP: [16]byte(peers[:16]), Port: port})
		} else {
			resp.Peers4 = append(resp.Peers4, bittorrent.Peer4{IP: [4]byte(peers[:4]), Port: port})
		}
	}
	return nil
}

// ParseScrapeResponse appends the figures of a scrape reply to dst.
func ParseScrapeResponse(b []byte, dst []bittorrent.ScrapeStats) ([]bittorrent.ScrapeStats, error) {
	if len(b) < 8 || (len(b)-8)%12 != 0 {
		return dst, ErrBadResponse
	}
	for b = b[8:]; len(b) > 0; b = b[12:] {
		dst = append(dst, bittorrent.ScrapeStats{
			Complete:   binary.BigEndian.Uint32(b[0:4]),
			Downloaded: binary.BigEndian.Uint32(b[4:8]),
			Incomplete: binary.BigEndian.Uint32(b[8:12]),
		})
	}
	return dst, nil
}

// ParseErrorResponse returns the message of an error reply.
func ParseErrorResponse(b []byte) (string, error) {
	if len(b) < 8 {
		return "", ErrShortPacket
	}
	return string(b[8:]), nil
}
