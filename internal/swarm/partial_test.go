package swarm

import (
	"net/netip"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// TestPartialSeeds: a partial seed (BEP 21's paused) counts among the
// leechers but not the downloaders; it and a seeder are sent downloaders
// only, so never each other; a downloader is sent everyone; an announce
// without paused makes a partial seed a downloader again, and one with
// paused and nothing left is a seeder.
func TestPartialSeeds(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	h := hashOf(3)
	for i := range 4 { // seeders, ports 2000-2003
		announce(s, h, v4(i), uint16(2000+i), 0, bittorrent.EventStarted, -1)
	}
	for i := range 3 { // partial seeds, ports 3000-3002
		announce(s, h, v4(100+i), uint16(3000+i), 7, bittorrent.EventPaused, -1)
	}
	for i := range 2 { // downloaders, ports 4000-4001
		announce(s, h, v4(200+i), uint16(4000+i), 7, bittorrent.EventStarted, -1)
	}
	want := bittorrent.ScrapeStats{Complete: 4, Incomplete: 5, Downloaders: 2}
	if st := scrape(s, h); st != want {
		t.Fatalf("scrape %+v, want %+v", st, want)
	}
	ports := func(r *bittorrent.AnnounceResponse) (out []uint16) {
		for _, p := range r.Peers4 {
			out = append(out, p.Port/1000*1000)
		}
		return out
	}
	onlyDownloaders := func(who string, r *bittorrent.AnnounceResponse) {
		t.Helper()
		if got := ports(r); len(got) != 2 || got[0] != 4000 || got[1] != 4000 {
			t.Fatalf("%s was sent %v (ports by thousand), want the 2 downloaders only", who, got)
		}
	}
	r := announce(s, h, v4(100), 3000, 7, bittorrent.EventPaused, -1)
	onlyDownloaders("a partial seed", r)
	if r.Complete != 4 || r.Incomplete != 5 {
		t.Fatalf("reply counts %d/%d", r.Complete, r.Incomplete)
	}
	onlyDownloaders("a seeder", announce(s, h, v4(0), 2000, 0, bittorrent.EventNone, -1))
	if r := announce(s, h, v4(200), 4000, 7, bittorrent.EventNone, -1); len(r.Peers4) != 8 {
		t.Fatalf("a downloader was sent %d peers, want all 8 others", len(r.Peers4))
	}

	// Resumed without paused: a downloader again, sent everyone.
	if r := announce(s, h, v4(101), 3001, 7, bittorrent.EventNone, -1); len(r.Peers4) != 8 {
		t.Fatalf("a resumed partial seed was sent %d peers, want all 8 others", len(r.Peers4))
	}
	want.Downloaders++
	if st := scrape(s, h); st != want {
		t.Fatalf("after a resume: scrape %+v, want %+v", st, want)
	}
	// Paused with nothing left is a seeder; a completed from a partial
	// seed counts a download.
	announce(s, h, v4(102), 3002, 0, bittorrent.EventCompleted, -1)
	want.Complete, want.Incomplete, want.Downloaded = 5, 4, 1
	if st := scrape(s, h); st != want {
		t.Fatalf("after a completed: scrape %+v, want %+v", st, want)
	}
	announce(s, h, v4(200), 4000, 0, bittorrent.EventPaused, -1)
	want.Complete, want.Incomplete, want.Downloaders = 6, 3, 2
	if st := scrape(s, h); st != want {
		t.Fatalf("after a paused with nothing left: scrape %+v, want %+v", st, want)
	}
	// A partial seed that stops leaves the runs in order.
	announce(s, h, v4(100), 3000, 7, bittorrent.EventStopped, -1)
	want.Incomplete--
	if st := scrape(s, h); st != want {
		t.Fatalf("after a stop: scrape %+v, want %+v", st, want)
	}
	checkInvariants(t, s)
}

// TestPartialSeedsOfBothFamilies: a partial seed's reply of both families
// holds downloaders of both, and Walk and Restore keep what each peer is.
func TestPartialSeedsOfBothFamilies(t *testing.T) {
	s := New(testConfig)
	h := hashOf(4)
	six := func(i int) netip.Addr { return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}) }
	announce(s, h, six(1), 1, 0, bittorrent.EventStarted, -1)
	announce(s, h, six(2), 2, 5, bittorrent.EventPaused, -1)
	announce(s, h, six(3), 3, 5, bittorrent.EventStarted, -1)
	announce(s, h, v4(4), 4, 5, bittorrent.EventStarted, -1)
	req := bittorrent.AnnounceRequest{InfoHash: h, Addr: v4(5), Port: 5, Left: 5, Event: bittorrent.EventPaused, NumWant: 50, BothFamilies: true}
	var resp bittorrent.AnnounceResponse
	if err := s.Announce(&req, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers4) != 1 || resp.Peers4[0].Port != 4 || len(resp.Peers6) != 1 || resp.Peers6[0].Port != 3 {
		t.Fatalf("a partial seed was sent %+v and %+v, want the downloaders at ports 4 and 3", resp.Peers4, resp.Peers6)
	}
	restored := roundTrip(t, s, testConfig)
	defer restored.Close()
	want := bittorrent.ScrapeStats{Complete: 1, Incomplete: 4, Downloaders: 2}
	if st := scrape(restored, h); st != want {
		t.Fatalf("restored: scrape %+v, want %+v", st, want)
	}
	kinds := map[uint16]string{}
	restored.Walk(func(tr *Torrent) error {
		for _, p := range tr.Peers4 {
			kinds[p.Port] = map[[2]bool]string{{true, false}: "seeder", {false, true}: "partial", {false, false}: "downloader"}[[2]bool{p.Seeder, p.Partial}]
		}
		for _, p := range tr.Peers6 {
			kinds[p.Port] = map[[2]bool]string{{true, false}: "seeder", {false, true}: "partial", {false, false}: "downloader"}[[2]bool{p.Seeder, p.Partial}]
		}
		return nil
	})
	if want := map[uint16]string{1: "seeder", 2: "partial", 3: "downloader", 4: "downloader", 5: "partial"}; len(kinds) != len(want) {
		t.Fatalf("walked %v, want %v", kinds, want)
	} else {
		for port, k := range want {
			if kinds[port] != k {
				t.Fatalf("walked %v, want %v", kinds, want)
			}
		}
	}
}

// TestLargestClassFitsAList: a list's counts are countBits wide, so the
// biggest block must hold no more than they count, and the next class,
// were there one, more.
func TestLargestClassFitsAList(t *testing.T) {
	last := classCap[maxClass]
	next := max(last+1, uint32(uint64(last)*5/4))
	if last > maxListPeers || next <= maxListPeers {
		t.Fatalf("classCap[%d] = %d, the next would be %d; a list counts %d", maxClass, last, next, maxListPeers)
	}
	var l list
	l.set(maxListPeers, 5, maxListPeers-5)
	if l.n() != maxListPeers || l.seeders() != 5 || l.partial() != maxListPeers-5 || l.uploadOnly() != maxListPeers {
		t.Fatalf("counts read back as %d, %d, %d", l.n(), l.seeders(), l.partial())
	}
}

// TestPartialSeedRepliesAreUniform: a partial seed's reply is a uniform
// choice among the downloaders, wherever the seeders and the other
// partial seeds stand: 40 downloaders, 10 a reply, 20,000 replies; the
// counts must pass a chi-square test (39 degrees of freedom) at a level a
// correct store fails about once in a million runs.
func TestPartialSeedRepliesAreUniform(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	h := hashOf(10)
	for i := range 40 {
		announce(s, h, v4(i), 6881, 1, 0, 0)
		if i%4 == 0 {
			announce(s, h, v4(100+i), 6881, 0, 0, 0)
			announce(s, h, v4(200+i), 6881, 1, bittorrent.EventPaused, 0)
		}
	}
	counts := map[bittorrent.Peer4]int{}
	const replies, per = 20000, 10
	for range replies {
		for _, p := range announce(s, h, v4(1000), 6881, 1, bittorrent.EventPaused, per).Peers4 {
			counts[p]++
		}
	}
	if len(counts) != 40 {
		t.Fatalf("%d distinct peers sent, want the 40 downloaders", len(counts))
	}
	expected := float64(replies*per) / 40
	chi2 := 0.0
	for p, c := range counts {
		if p.IP[3] >= 100 {
			t.Fatalf("a partial seed was sent %v, not a downloader", p)
		}
		chi2 += (float64(c) - expected) * (float64(c) - expected) / expected
	}
	if chi2 > 97 {
		t.Fatalf("chi-square %.1f over 39 degrees of freedom: not uniform (%v)", chi2, counts)
	}
}
