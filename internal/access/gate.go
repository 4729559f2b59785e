package access

import (
	"sync/atomic"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Gate applies a list in front of a tracker. The list can be swapped while
// requests are served (SIGHUP).
type Gate struct {
	next bittorrent.Tracker
	list atomic.Pointer[List]
}

// NewGate puts list in front of next.
func NewGate(next bittorrent.Tracker, list *List) *Gate {
	g := &Gate{next: next}
	g.list.Store(list)
	return g
}

// SetList replaces the list.
func (g *Gate) SetList(l *List) { g.list.Store(l) }

// Announce refuses a torrent the list excludes, and passes others on.
func (g *Gate) Announce(req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	if !g.list.Load().Allowed(&req.InfoHash) {
		return bittorrent.ErrNotAllowed
	}
	return g.next.Announce(req, resp)
}

// Scrape refuses a torrent the list excludes, and passes others on.
func (g *Gate) Scrape(h *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	if !g.list.Load().Allowed(h) {
		return bittorrent.ScrapeStats{}, bittorrent.ErrNotAllowed
	}
	return g.next.Scrape(h)
}
