package swarm

import (
	"net/netip"
	"unsafe"

	"github.com/trakx/trakx/internal/bittorrent"
)

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// IsPublic reports whether peers on the internet can reach a.
func IsPublic(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

// isPublicIP is IsPublic for a stored address, without building a
// netip.Addr for IPv4, the common case on the reply path.
func isPublicIP[A bittorrent.IP](ip A) bool {
	if len(ip) == 4 {
		return isPublic4(*(*[4]byte)(unsafe.Pointer(&ip)))
	}
	return IsPublic(netip.AddrFrom16(*(*[16]byte)(unsafe.Pointer(&ip))).Unmap())
}

// isPublic4 is IsPublic for an IPv4 address, spelled out.
func isPublic4(a [4]byte) bool {
	switch {
	case a == [4]byte{} || a == [4]byte{255, 255, 255, 255}:
		return false
	case a[0] == 127 || a[0]&0xf0 == 224 || (a[0] == 169 && a[1] == 254): // loopback, multicast, link-local
		return false
	case a[0] == 10 || (a[0] == 172 && a[1]&0xf0 == 16) || (a[0] == 192 && a[1] == 168): // RFC 1918
		return false
	case a[0] == 100 && a[1]&0xc0 == 64: // CGNAT
		return false
	}
	return true
}

// endpointHash mixes a peer's address and port with a secret seed, for the
// position index of big swarms: clients choose ports and can choose
// addresses, so they must not be able to choose collisions.
func endpointHash[A bittorrent.IP](ip A, port uint16, seed uint64) uint64 {
	h := seed ^ uint64(port)
	b := unsafe.Slice((*byte)(unsafe.Pointer(&ip)), len(ip))
	for i := 0; i < len(b); i += 4 {
		w := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24
		h = (h ^ w<<16) * 0x9E3779B97F4A7C15
		h ^= h >> 29
	}
	h *= 0xBF58476D1CE4E5B9
	return h ^ h>>32
}
