package swarm

import (
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// TestCountedCompletions: the reply says whether the store counted a
// completion (a new seeder, not a repeat, not one with data left), and a
// Counted completion (counted where another node accepted it) is counted
// even from a peer that seeds here already, once per announce.
func TestCountedCompletions(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	h := hashOf(7)
	completed := func(left uint64, counted bool) bool {
		req := bittorrent.AnnounceRequest{InfoHash: h, Addr: v4(1), Port: 1, Left: left, Event: bittorrent.EventCompleted, Counted: counted}
		var resp bittorrent.AnnounceResponse
		if err := s.Announce(&req, &resp); err != nil {
			t.Fatal(err)
		}
		return resp.Counted
	}
	steps := []struct {
		left           uint64
		counted, wants bool
		downloaded     uint32
	}{
		{10, false, false, 0}, // data left: no download
		{0, false, true, 1},   // a new seeder
		{0, false, false, 1},  // a repeat from the seeder
		{0, true, true, 2},    // counted elsewhere: counted here, seeder or not
		{0, true, true, 3},
	}
	for i, st := range steps {
		if got := completed(st.left, st.counted); got != st.wants {
			t.Fatalf("step %d: reply says counted %v, want %v", i, got, st.wants)
		}
		if d := scrape(s, h).Downloaded; d != st.downloaded {
			t.Fatalf("step %d: downloaded %d, want %d", i, d, st.downloaded)
		}
	}
	r := announce(s, h, v4(2), 2, 0, bittorrent.EventNone, -1)
	if r.Counted {
		t.Fatal("a plain announce said counted")
	}
	checkInvariants(t, s)
}
