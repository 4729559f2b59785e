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

// Admit refuses a client the filter excludes, then a torrent the list
// excludes: the checks of an announce, for frontends with swarms of their
// own (WebSocket).
func (g *Gate) Admit(h *bittorrent.InfoHash, id *bittorrent.PeerID) error {
	if !g.clients.Load().Allowed(id) {
		return bittorrent.ErrClientNotAllowed
	}
	if !g.list.Load().Allowed(h) {
		return bittorrent.ErrNotAllowed
	}
	return nil
}

// AdmitTorrent refuses a torrent the list excludes: the check of a scrape.
func (g *Gate) AdmitTorrent(h *bittorrent.InfoHash) error {
	if !g.list.Load().Allowed(h) {
		return bittorrent.ErrNotAllowed
	}
	return nil
}

// Announce refuses what Admit refuses, and passes others on.
func (g *Gate) Announce(req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	if err := g.Admit(&req.InfoHash, &req.PeerID); err != nil {
		return err
	}
	return g.next.Announce(req, resp)
}

// Scrape refuses a torrent the list excludes, and passes others on. A
// scrape names no client, so the client filter does not apply.
func (g *Gate) Scrape(h *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	if err := g.AdmitTorrent(h); err != nil {
		return bittorrent.ScrapeStats{}, err
	}
	return g.next.Scrape(h)
}
