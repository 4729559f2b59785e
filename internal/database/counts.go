package database

import (
	"encoding/binary"

	"github.com/trakx/trakx/internal/swarm"
)

// A torrent record's peers come in groups, in the store's order: IPv4
// seeders, partial seeds (BEP 21) and downloaders, then the same of IPv6.
// Files of versions 1 and 2 have no partial seeds: their records count
// seeders and leechers of each family, and their leechers are downloaders.

// group is one run of a torrent record's peers.
type group struct {
	ipv6, seeder, partial bool
}

var groups = [6]group{
	{ipv6: false, seeder: true}, {ipv6: false, partial: true}, {ipv6: false},
	{ipv6: true, seeder: true}, {ipv6: true, partial: true}, {ipv6: true},
}

// addrSize is the bytes of a peer's address in the group.
func (g group) addrSize() int {
	if g.ipv6 {
		return 16
	}
	return 4
}

// counts are what a torrent record says after its info hash: its
// downloaded count and how many peers each group has.
type counts struct {
	downloaded uint32
	peers      [len(groups)]uint32
}

// countsIn is how many counts a torrent record of the format carries.
func (f format) countsIn() int {
	if f.partial {
		return 1 + len(groups)
	}
	return 5 // downloaded, IPv4 seeders and leechers, IPv6 seeders and leechers
}

// readCounts reads a torrent record's counts, each with next.
func (f format) readCounts(next func() (uint32, error)) (c counts, err error) {
	var raw [1 + len(groups)]uint32
	for i := range f.countsIn() {
		if raw[i], err = next(); err != nil {
			return c, err
		}
	}
	return f.spread(&raw), nil
}

// countsAt reads the counts of a torrent record index checked, at b, and
// returns them and what follows them.
func (f format) countsAt(b []byte) (counts, []byte) {
	var raw [1 + len(groups)]uint32
	for i := range f.countsIn() {
		v, n := binary.Uvarint(b)
		raw[i], b = uint32(v), b[n:]
	}
	return f.spread(&raw), b
}

// spread puts a record's counts, as read, into the groups.
func (f format) spread(raw *[1 + len(groups)]uint32) (c counts) {
	c.downloaded = raw[0]
	if f.partial {
		copy(c.peers[:], raw[1:])
	} else {
		c.peers = [len(groups)]uint32{raw[1], 0, raw[2], raw[3], 0, raw[4]}
	}
	return c
}

// family is how many peers of a family (IPv6 or IPv4) the record holds.
func (c *counts) family(ipv6 bool) (n int64) {
	for i, g := range groups {
		if g.ipv6 == ipv6 {
			n += int64(c.peers[i])
		}
	}
	return n
}

// bytes is the size of the record's peers, with tail bytes after each
// address.
func (c *counts) bytes(tail int) int64 {
	return c.family(false)*int64(4+tail) + c.family(true)*int64(16+tail)
}

// appendPeer adds the group's peer at addr (its address's bytes) to t.
func (g group) appendPeer(t *swarm.Torrent, addr []byte, port uint16, lastSeen uint32) {
	if g.ipv6 {
		t.Peers6 = append(t.Peers6, swarm.SnapshotPeer6{IP: [16]byte(addr), Port: port, Seeder: g.seeder, Partial: g.partial, LastSeen: lastSeen})
	} else {
		t.Peers4 = append(t.Peers4, swarm.SnapshotPeer4{IP: [4]byte(addr), Port: port, Seeder: g.seeder, Partial: g.partial, LastSeen: lastSeen})
	}
}
