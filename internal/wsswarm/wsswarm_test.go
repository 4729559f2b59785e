package wsswarm

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

type conn struct{ name string }

func id(n int) (p bittorrent.PeerID) { copy(p[:], fmt.Sprintf("-WW0001-%012d", n)); return p }

var t0 = time.Unix(1_800_000_000, 0)

func TestAnnouncePicksOthersNeverSelf(t *testing.T) {
	s := New[*conn]()
	h := bittorrent.InfoHash{1}
	conns := make([]*conn, 10)
	for i := range conns {
		conns[i] = &conn{fmt.Sprint(i)}
		picked, st, err := s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(i), Conn: conns[i], Want: 5, Now: t0, Seeder: i < 3}, nil)
		if err != nil || len(picked) != min(i, 5) {
			t.Fatalf("peer %d: picked %d, %v", i, len(picked), err)
		}
		seen := map[*conn]bool{}
		for _, c := range picked {
			if c == conns[i] || seen[c] {
				t.Fatalf("peer %d picked itself or twice: %v", i, picked)
			}
			seen[c] = true
		}
		if st.Complete != uint32(min(i+1, 3)) || st.Complete+st.Incomplete != uint32(i+1) {
			t.Fatalf("peer %d: %+v", i, st)
		}
	}
	// Everyone is picked, over enough announces: the choice is random.
	count := map[*conn]int{}
	for range 2000 {
		picked, _, _ := s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(0), Conn: conns[0], Want: 3, Now: t0, Seeder: true}, nil)
		for _, c := range picked {
			count[c]++
		}
	}
	for i := 1; i < 10; i++ {
		if n := count[conns[i]]; n < 2000*3/9/2 || n > 2000*3/9*2 {
			t.Errorf("peer %d picked %d times in 2000 picks of 3 among 9", i, n)
		}
	}
	if st := s.Stats(); st != (Stats{Torrents: 1, Seeders: 3, Leechers: 7}) {
		t.Fatalf("%+v", st)
	}
}

func TestPeerIDBelongsToItsConnection(t *testing.T) {
	s := New[*conn]()
	h := bittorrent.InfoHash{2}
	a, b := &conn{"a"}, &conn{"b"}
	s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(1), Conn: a, Now: t0}, nil)
	if _, _, err := s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(1), Conn: b, Now: t0}, nil); err != ErrPeerIDInUse {
		t.Fatalf("another connection took a peer id: %v", err)
	}
	if c, ok := s.Find(&h, &bittorrent.PeerID{}); ok || c != nil {
		t.Fatal("found a peer never announced")
	}
	if c, ok := s.Find(&h, ptr(id(1))); !ok || c != a {
		t.Fatal("the peer's connection is not a")
	}
	s.Leave(&h, ptr(id(1)), b) // not b's to leave
	if _, ok := s.Find(&h, ptr(id(1))); !ok {
		t.Fatal("another connection removed the peer")
	}
	s.Leave(&h, ptr(id(1)), a)
	if _, ok := s.Find(&h, ptr(id(1))); ok || s.Stats() != (Stats{}) {
		t.Fatalf("the peer outlived its connection: %+v", s.Stats())
	}
	if _, _, err := s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(1), Conn: b, Now: t0}, nil); err != nil {
		t.Fatalf("the id was not free after its connection left: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestStoppedCompletedAndExpiry(t *testing.T) {
	s := New[*conn]()
	h := bittorrent.InfoHash{3}
	c := &conn{}
	s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(1), Conn: c, Now: t0}, nil)
	_, st, _ := s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(1), Conn: c, Now: t0, Seeder: true, Event: bittorrent.EventCompleted}, nil)
	if st != (bittorrent.ScrapeStats{Complete: 1, Downloaded: 1}) {
		t.Fatalf("after completed: %+v", st)
	}
	s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(2), Conn: c, Now: t0.Add(time.Minute)}, nil)
	if _, st, _ = s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(2), Conn: c, Event: bittorrent.EventStopped}, nil); st != (bittorrent.ScrapeStats{Complete: 1, Downloaded: 1}) {
		t.Fatalf("after stopped: %+v", st)
	}
	s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(3), Conn: c, Now: t0.Add(time.Hour)}, nil)
	if n := s.Expire(t0.Add(30 * time.Minute)); n != 1 || s.Scrape(&h).Incomplete != 1 || s.Scrape(&h).Complete != 0 {
		t.Fatalf("expired %d, left %+v", n, s.Scrape(&h))
	}
	if n := s.Expire(t0.Add(2 * time.Hour)); n != 1 || s.Stats() != (Stats{}) {
		t.Fatalf("expired %d, left %+v", n, s.Stats())
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New[*conn]()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &conn{}
			for i := range 500 {
				h := bittorrent.InfoHash{byte(i % 7)}
				s.Announce(&Announce[*conn]{InfoHash: h, PeerID: id(g*1000 + i%50), Conn: c, Want: 5, Now: t0, Seeder: i%3 == 0}, nil)
				if i%5 == 0 {
					s.Leave(&h, ptr(id(g*1000+i%50)), c)
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	total := 0
	for i := range 7 {
		sc := s.Scrape(&bittorrent.InfoHash{byte(i)})
		total += int(sc.Complete + sc.Incomplete)
	}
	if total != st.Seeders+st.Leechers {
		t.Fatalf("swarms hold %d peers, totals say %+v", total, st)
	}
}
