package httpproto

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// The encoders write bencode by hand, keys in sorted order as the format
// requires, straight into a reused buffer.

func appendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, ':')
	return append(dst, b...)
}

func appendInt(dst []byte, key string, n int64) []byte {
	dst = appendString(dst, key)
	dst = append(dst, 'i')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, 'e')
}

// AppendFailure appends a bencoded failure reason.
func AppendFailure(dst []byte, reason string) []byte {
	dst = append(dst, 'd')
	dst = appendString(dst, "failure reason")
	dst = appendString(dst, reason)
	return append(dst, 'e')
}

// AppendAnnounceResponse appends the bencoded reply to an announce. Compact
// replies carry IPv4 peers in "peers" (BEP 23) and IPv6 peers in "peers6"
// (BEP 7); others carry all peers as a list of dictionaries (BEP 3) with
// "ip" and "port" only: peer ids are not stored, so every reply is the one
// no_peer_id=1 asks for.
func AppendAnnounceResponse(dst []byte, resp *bittorrent.AnnounceResponse, opts AnnounceOptions) []byte {
	dst = append(dst, 'd')
	dst = appendInt(dst, "complete", int64(resp.Complete))
	dst = appendInt(dst, "incomplete", int64(resp.Incomplete))
	dst = appendInt(dst, "interval", int64(resp.Interval/time.Second))
	dst = appendInt(dst, "min interval", int64(resp.MinInterval/time.Second))
	dst = appendString(dst, "peers")
	if !opts.Compact {
		dst = append(dst, 'l')
		for i := range resp.Peers4 {
			p := &resp.Peers4[i]
			dst = appendPeerDict(dst, netip.AddrFrom4(p.IP), p.Port)
		}
		for i := range resp.Peers6 {
			p := &resp.Peers6[i]
			dst = appendPeerDict(dst, netip.AddrFrom16(p.IP), p.Port)
		}
		dst = append(dst, 'e')
		return append(dst, 'e')
	}
	dst = strconv.AppendInt(dst, int64(len(resp.Peers4)*6), 10)
	dst = append(dst, ':')
	for i := range resp.Peers4 {
		p := &resp.Peers4[i]
		dst = append(dst, p.IP[:]...)
		dst = append(dst, byte(p.Port>>8), byte(p.Port))
	}
	if len(resp.Peers6) > 0 {
		dst = appendString(dst, "peers6")
		dst = strconv.AppendInt(dst, int64(len(resp.Peers6)*18), 10)
		dst = append(dst, ':')
		for i := range resp.Peers6 {
			p := &resp.Peers6[i]
			dst = append(dst, p.IP[:]...)
			dst = append(dst, byte(p.Port>>8), byte(p.Port))
		}
	}
	return append(dst, 'e')
}

// appendPeerDict writes one BEP 3 peer: ip and port, in key order.
func appendPeerDict(dst []byte, ip netip.Addr, port uint16) []byte {
	dst = append(dst, 'd')
	dst = appendString(dst, "ip")
	var text [64]byte
	dst = appendBytes(dst, ip.AppendTo(text[:0]))
	dst = appendInt(dst, "port", int64(port))
	return append(dst, 'e')
}

// AppendScrapeResponse appends a BEP 48 scrape reply. keys must be sorted
// and free of repeats (ParseScrape makes them so); stats[i] belongs to
// keys[i].
func AppendScrapeResponse(dst []byte, keys []ScrapeKey, stats []bittorrent.ScrapeStats) []byte {
	dst = append(dst, 'd')
	dst = appendString(dst, "files")
	dst = append(dst, 'd')
	for i := range keys {
		dst = AppendScrapeEntry(dst, keys[i].Bytes(), stats[i])
	}
	dst = append(dst, 'e')
	return append(dst, 'e')
}

// AppendScrapeEntry appends one torrent's entry of a scrape reply's files
// dictionary: its key (the info hash as the client sent it, or as the
// store holds it) and its figures, BEP 21's downloaders among them.
// Entries must come in the order of their keys' bytes.
func AppendScrapeEntry(dst []byte, key []byte, st bittorrent.ScrapeStats) []byte {
	dst = appendBytes(dst, key)
	dst = append(dst, 'd')
	dst = appendInt(dst, "complete", int64(st.Complete))
	dst = appendInt(dst, "downloaded", int64(st.Downloaded))
	dst = appendInt(dst, "downloaders", int64(st.Downloaders))
	dst = appendInt(dst, "incomplete", int64(st.Incomplete))
	return append(dst, 'e')
}
