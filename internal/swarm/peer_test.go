package swarm

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestIsPublic4MatchesNetip checks the hand-written IPv4 test against the
// netip-based IsPublic on every edge of the ranges it names and on a
// million random addresses.
func TestIsPublic4MatchesNetip(t *testing.T) {
	check := func(a [4]byte) {
		if got, want := isPublic4(a), IsPublic(netip.AddrFrom4(a)); got != want {
			t.Fatalf("%v: isPublic4 %v, IsPublic %v", netip.AddrFrom4(a), got, want)
		}
	}
	for first := range 256 {
		for _, second := range []byte{0, 1, 15, 16, 31, 32, 63, 64, 127, 128, 167, 168, 191, 192, 253, 254, 255} {
			for _, last := range []byte{0, 1, 254, 255} {
				check([4]byte{byte(first), second, last, last})
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		v := rng.Uint32()
		check([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
}
