// Package bittorrent holds the domain types that flow between the wire
// protocols and the swarm store. It knows nothing of sockets or encodings.
package bittorrent

import (
	"encoding/hex"
	"net/netip"
	"time"
)

// InfoHash identifies a torrent.
type InfoHash [20]byte

// String returns the hash in lower-case hex, the form people paste into
// access lists and logs.
func (h InfoHash) String() string { return hex.EncodeToString(h[:]) }

// PeerID is the 20-byte identifier a client picks for itself.
type PeerID [20]byte

// Event is what a client says happened since its last announce. The values
// are those of BEP 15 so that the UDP parser can use them directly.
type Event uint8

const (
	EventNone      Event = 0
	EventCompleted Event = 1
	EventStarted   Event = 2
	EventStopped   Event = 3
	// EventPaused is BEP 21's paused: a partial seed, a peer with data left
	// that downloads nothing (a multi-file torrent with files deselected),
	// says it in every announce while it is one. BEP 15 has no number for
	// it; libtorrent sends 4 over UDP, and 4 is what it is here. The swarm
	// counts the peer among the leechers but not the downloaders, and
	// sends it downloaders only.
	EventPaused Event = 4
)

// AnnounceRequest is one client's announce, whatever protocol carried it.
type AnnounceRequest struct {
	InfoHash   InfoHash
	PeerID     PeerID
	Addr       netip.Addr // the client's address, IPv4-mapped addresses unmapped
	Port       uint16
	Uploaded   uint64
	Downloaded uint64
	Left       uint64
	Event      Event
	NumWant    int32 // negative: the client did not say
	// PeerLimit is the most peers the reply's encoding carries, whatever
	// numwant says (a UDP reply must fit a datagram); 0: no limit.
	PeerLimit int32
	Key       uint32
	// BothFamilies asks for peers of the other address family too, once
	// those of the client's own family are exhausted. HTTP can carry both
	// in one reply (BEP 7); a UDP reply cannot.
	BothFamilies bool
	// Counted says that this completion was counted where it was
	// accepted (a cluster node's record applied after a snapshot): the
	// store counts it even if the peer already seeds here, where the
	// snapshot may have made it a seeder before its completion arrived.
	Counted bool
}

// IP is the fixed-size address of either family: an array, so that a peer
// holds no pointer.
type IP interface{ [4]byte | [16]byte }

// PeerOf is a peer as handed to a client: its address and port, which is
// all the tracker keeps of it (peer ids are not stored). Code that treats
// both families alike is written once over it; the rest names Peer4 and
// Peer6.
type PeerOf[A IP] struct {
	IP   A
	Port uint16
}

// Peer4 is an IPv4 peer as handed to a client. (The store's copy of a
// peer, with its seeding and last-seen time, is swarm.SnapshotPeer4.)
type Peer4 = PeerOf[[4]byte]

// Peer6 is an IPv6 peer as handed to a client.
type Peer6 = PeerOf[[16]byte]

// AnnounceResponse is the tracker's answer to an announce. Its peer slices
// are reused from one request to the next by the frontends, so that the
// request path does not allocate.
type AnnounceResponse struct {
	Interval    time.Duration
	MinInterval time.Duration
	Complete    uint32 // seeders
	Incomplete  uint32 // leechers
	Peers4      []Peer4
	Peers6      []Peer6
	// Counted: the announce was a completion the store counted (it made
	// the peer a seeder, or came Counted).
	Counted bool
}

// Reset empties the response for reuse, keeping the peer buffers.
func (r *AnnounceResponse) Reset() {
	peers4, peers6 := r.Peers4[:0], r.Peers6[:0]
	*r = AnnounceResponse{Peers4: peers4, Peers6: peers6}
}

// ScrapeStats are one torrent's figures in a scrape reply.
type ScrapeStats struct {
	Complete   uint32 // seeders
	Downloaded uint32 // completed downloads ever counted
	Incomplete uint32 // leechers, partial seeds among them
	// Downloaders are the leechers that are not partial seeds (BEP 21):
	// Incomplete - Downloaders of them are. HTTP scrapes carry it; a UDP
	// scrape reply has no room for it.
	Downloaders uint32
}

// ClientError is a request the tracker refuses, with a message meant for
// the client. The frontends send its text in a BEP 15 error packet or a
// bencoded failure reason. Values are declared once, so returning one does
// not allocate.
type ClientError struct {
	Message string
	Kind    ErrorKind
}

// Error is the message for the client.
func (e *ClientError) Error() string { return e.Message }

// ErrorKind says what a ClientError refuses, for the counters.
type ErrorKind uint8

const (
	// KindMalformed: the request could not be read (the zero value: every
	// parser's error).
	KindMalformed ErrorKind = iota
	// KindTorrentNotAllowed: the access list excludes the torrent.
	KindTorrentNotAllowed
	// KindClientNotAllowed: the client filter excludes the client.
	KindClientNotAllowed
	// KindTrackerFull: the store is at tracker.max_peers or max_torrents.
	KindTrackerFull
)

// Tracker is what the frontends serve: the swarm logic behind the wire.
// Its errors are *ClientError values for the client to read.
type Tracker interface {
	Announce(*AnnounceRequest, *AnnounceResponse) error
	Scrape(*InfoHash) (ScrapeStats, error)
}

// ErrNotAllowed refuses a torrent the tracker's access list excludes. The
// frontends count it apart from other errors.
var ErrNotAllowed = &ClientError{Message: "torrent not allowed on this tracker", Kind: KindTorrentNotAllowed}

// ErrClientNotAllowed refuses an announce from a client (by its peer id's
// prefix) that access.client_allow or access.client_deny excludes.
var ErrClientNotAllowed = &ClientError{Message: "client not allowed on this tracker", Kind: KindClientNotAllowed}
