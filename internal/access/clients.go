package access

import (
	"bytes"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Clients decides which BitTorrent clients may announce, by the start of
// their peer id ("-qB46", "-XL", "M7-"): a client matching a deny prefix is
// refused; when allow prefixes are given, a client matching none of them
// is refused too. Prefixes are compared byte for byte, case-sensitive.
type Clients struct {
	allow, deny [][]byte
}

// AnyClient is the filter that refuses nobody.
var AnyClient = &Clients{}

// NewClients makes a filter of allow and deny prefixes.
func NewClients(allow, deny []string) *Clients {
	if len(allow) == 0 && len(deny) == 0 {
		return AnyClient
	}
	c := &Clients{}
	for _, p := range allow {
		c.allow = append(c.allow, []byte(p))
	}
	for _, p := range deny {
		c.deny = append(c.deny, []byte(p))
	}
	return c
}

// Allowed reports whether the client with this peer id may announce.
func (c *Clients) Allowed(id *bittorrent.PeerID) bool {
	for _, p := range c.deny {
		if bytes.HasPrefix(id[:], p) {
			return false
		}
	}
	if len(c.allow) == 0 {
		return true
	}
	for _, p := range c.allow {
		if bytes.HasPrefix(id[:], p) {
			return true
		}
	}
	return false
}
