package wire

import (
	"net/netip"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Record is one announce a node accepted, as much of it as a receiver
// needs to apply it to its own store.
type Record struct {
	InfoHash bittorrent.InfoHash
	Addr     netip.Addr // IPv4 or IPv6, never IPv4-mapped, no zone
	Port     uint16
	Event    bittorrent.Event
	Seeder   bool // left == 0
}

// The tag byte's fields (see the package doc).
const (
	tagIPv6     = 0x80
	tagSameHash = 0x40
	tagReserved = 0x30
	tagSeeder   = 0x08
	tagEvent    = 0x07
)

// Record sizes in bytes, tag included.
const (
	hashSize = len(bittorrent.InfoHash{})
	// minRecordSize is an IPv4 record that shares its info hash.
	minRecordSize = 1 + 4 + 2
	// MaxRecordSize is the most bytes one record takes: IPv6, its own hash.
	MaxRecordSize = 1 + hashSize + 16 + 2
)

// RecordOf is the record of an announce the node accepted.
func RecordOf(req *bittorrent.AnnounceRequest) Record {
	return Record{InfoHash: req.InfoHash, Addr: req.Addr, Port: req.Port, Event: req.Event, Seeder: req.Left == 0}
}

// Request fills req with the announce the record stands for, as the
// receiver applies it to its store: left is 0 for a seeder and 1
// otherwise (the store only asks whether it is 0), and numwant 0, since
// nobody reads the reply. The fields that do not travel are zero.
func (r *Record) Request(req *bittorrent.AnnounceRequest) {
	left := uint64(1)
	if r.Seeder {
		left = 0
	}
	*req = bittorrent.AnnounceRequest{InfoHash: r.InfoHash, Addr: r.Addr, Port: r.Port, Event: r.Event, Left: left}
}

// Valid reports whether a receiver accepts the record: a known event, a
// port, and an address a peer can have (see the package doc). A
// publisher that sends an invalid record has it counted malformed by
// every receiver.
func (r *Record) Valid() bool {
	return r.Event <= bittorrent.EventPaused && r.Port != 0 && validPeerAddr(r.Addr)
}

// validPeerAddr reports whether a is an address a peer can announce from
// and be reached at, in the one spelling of it the wire carries.
func validPeerAddr(a netip.Addr) bool {
	switch {
	case !a.IsValid() || a.Zone() != "" || a.Is4In6():
		return false
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast():
		return false
	}
	return a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// tag is the record's tag byte; sameHash says its info hash is left out.
// An event that does not fit the tag's bits is written as 7, which every
// receiver refuses, so that the record is counted rather than misread.
func (r *Record) tag(sameHash bool) byte {
	t := byte(min(r.Event, tagEvent))
	if r.Addr.Is6() {
		t |= tagIPv6
	}
	if sameHash {
		t |= tagSameHash
	}
	if r.Seeder {
		t |= tagSeeder
	}
	return t
}

// recordSize is the bytes of a record with the tag t, the tag included;
// every tag has one, so that a malformed record is skipped whole.
func recordSize(t byte) int {
	n := 1 + 4 + 2
	if t&tagIPv6 != 0 {
		n += 12
	}
	if t&tagSameHash == 0 {
		n += hashSize
	}
	return n
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// IsPrivate reports whether a is an address of a site's own network,
// which peers elsewhere cannot reach and another site should not learn:
// RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 4193 unique local
// addresses (fc00::/7), link-local addresses (169.254/16, fe80::/10) and
// carrier-grade NAT's shared space (100.64/10, RFC 6598). A publisher
// leaves out peers at such addresses unless cluster.replicate_private is
// set. Loopback and the like are not private but invalid (Record.Valid).
// An IPv4-mapped address is judged as the IPv4 address it maps.
func IsPrivate(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsPrivate() || a.IsLinkLocalUnicast() || cgnat.Contains(a)
}

// ValidNode reports whether name can name a node: one NATS subject token
// of 1 to 64 bytes of [A-Za-z0-9_-], so that it can stand in a subject
// and be checked against it, and fits the header's length byte.
func ValidNode(name string) bool { return validNode(name) }
