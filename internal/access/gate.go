package access

import (
	"sync/atomic"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Gate applies a torrent list and a client filter in front of a tracker.
// Both can be swapped while requests are served (SIGHUP).
type Gate struct {
	next    bittorrent.Tracker
	list    atomic.Pointer[List]
	clients atomic.Pointer[Clients]
}

// NewGate puts list in front of next, and lets any client in.
func NewGate(next bittorrent.Tracker, list *List) *Gate {
	g := &Gate{next: next}
	g.list.Store(list)
	g.clients.Store(AnyClient)
	return g
}

// SetList replaces the list.
func (g *Gate) SetList(l *List) { g.list.Store(l) }

// SetClients replaces the client filter.
func (g *Gate) SetClients(c *Clients) { g.clients.Store(c) }

// Announce refuses a client the filter excludes, then a torrent the list
// excludes, and passes others on.
func (g *Gate) Announce(req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	if !g.clients.Load().Allowed(&req.PeerID) {
		return bittorrent.ErrClientNotAllowed
	}
	if !g.list.Load().Allowed(&req.InfoHash) {
		return bittorrent.ErrNotAllowed
	}
	return g.next.Announce(req, resp)
}

// Scrape refuses a torrent the list excludes, and passes others on. A
// scrape names no client, so the client filter does not apply.
func (g *Gate) Scrape(h *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	if !g.list.Load().Allowed(h) {
		return bittorrent.ScrapeStats{}, bittorrent.ErrNotAllowed
	}
	return g.next.Scrape(h)
}
