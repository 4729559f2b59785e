package cluster

import "github.com/trakx/trakx/internal/bittorrent"

// admitting is the tracker Admitting returns.
type admitting struct {
	admit func(*bittorrent.InfoHash) error
	next  bittorrent.Tracker
}

// Admitting is a tracker for Options.Apply: admit (access.Gate's
// AdmitTorrent) refuses a torrent the access list excludes, and next (the
// store) takes the rest. The client filter is left out: a record carries
// no peer id, and the node that accepted the announce applied it.
func Admitting(admit func(*bittorrent.InfoHash) error, next bittorrent.Tracker) bittorrent.Tracker {
	return &admitting{admit: admit, next: next}
}

// Announce refuses a torrent admit refuses, and passes others on.
func (a *admitting) Announce(req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	if err := a.admit(&req.InfoHash); err != nil {
		return err
	}
	return a.next.Announce(req, resp)
}

// Scrape refuses a torrent admit refuses, and passes others on.
func (a *admitting) Scrape(h *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	if err := a.admit(h); err != nil {
		return bittorrent.ScrapeStats{}, err
	}
	return a.next.Scrape(h)
}
