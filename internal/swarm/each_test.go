package swarm

import (
	"net/netip"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// EachTorrent visits every torrent once, with the counts Scrape has, and
// holds no lock while f runs: f announcing to the very torrent it is
// given would deadlock otherwise.
func TestEachTorrentCountsEveryTorrentUnlocked(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	const torrents = 3000
	for i := range torrents {
		h := hashOf(i)
		for p := range i % 5 {
			left := uint64(p % 2)
			ev := bittorrent.EventStarted
			if left == 0 {
				ev = bittorrent.EventCompleted
			}
			announce(s, h, v4(i), uint16(1000+p), left, ev, 0)
		}
		if i%7 == 0 {
			announce(s, h, netip.MustParseAddr("2001:db8::1"), 9, 1, bittorrent.EventStarted, 0)
		}
	}
	seen := map[bittorrent.InfoHash]bool{}
	s.EachTorrent(func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats) {
		if seen[*h] {
			t.Fatalf("%x visited twice", h)
		}
		seen[*h] = true
		if want, _ := s.Scrape(h); st != want {
			t.Fatalf("%x: %+v, Scrape has %+v", h, st, want)
		}
		announce(s, *h, v4(1<<20), 1, 1, bittorrent.EventStarted, 0) // takes the shard's lock
	})
	if want := s.Stats().Torrents; len(seen) != want {
		t.Fatalf("visited %d torrents of %d", len(seen), want)
	}
}
