package access

import (
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

func peerID(s string) *bittorrent.PeerID {
	var id bittorrent.PeerID
	copy(id[:], s)
	return &id
}

func TestClients(t *testing.T) {
	for _, c := range []struct {
		allow, deny []string
		id          string
		want        bool
	}{
		{nil, nil, "-XL0019-abcdefghijkl", true},
		{nil, []string{"-XL"}, "-XL0019-abcdefghijkl", false},
		{nil, []string{"-XL"}, "-xl0019-abcdefghijkl", true}, // case-sensitive
		{nil, []string{"-XL"}, "X-L0019-abcdefghijkl", true}, // a prefix, not a substring
		{[]string{"-qB"}, nil, "-qB4500-abcdefghijkl", true},
		{[]string{"-qB"}, nil, "-TR3000-abcdefghijkl", false},
		{[]string{"-qB"}, []string{"-qB46"}, "-qB4610-abcdefghijkl", false}, // deny wins
		{[]string{"-qB"}, []string{"-qB46"}, "-qB4500-abcdefghijkl", true},
		{[]string{"\xff\x00"}, nil, "\xff\x00binary-peer-id--", true},         // bytes, not text
		{[]string{"-qB4500-abcdefghijkl"}, nil, "-qB4500-abcdefghijkl", true}, // the whole id
	} {
		if got := NewClients(c.allow, c.deny).Allowed(peerID(c.id)); got != c.want {
			t.Errorf("allow %q deny %q, peer id %q: %v, want %v", c.allow, c.deny, c.id, got, c.want)
		}
	}
	if NewClients(nil, nil) != AnyClient {
		t.Error("an empty filter is not AnyClient")
	}
}
