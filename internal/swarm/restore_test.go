package swarm

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// dump lists a store's torrents in a comparable form.
func dump(s *Store) string {
	var lines []string
	s.Walk(func(t *Torrent) error {
		var peers []string
		for _, p := range t.Peers4 {
			peers = append(peers, fmt.Sprint(p))
		}
		for _, p := range t.Peers6 {
			peers = append(peers, fmt.Sprint(p))
		}
		slices.Sort(peers)
		lines = append(lines, fmt.Sprintf("%x %d %v", t.Hash, t.Downloaded, peers))
		return nil
	})
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// restoreTestTorrents are torrents of every size class up to a big swarm
// with an index, both families, some peers expired, one with port 0, and
// repeats.
func restoreTestTorrents(now uint32) []Torrent {
	var ts []Torrent
	for i := range 300 {
		t := Torrent{Hash: hashOf(i), Downloaded: uint32(i)}
		for p := range i % 97 {
			seen := now - uint32(p%5)*600 // every fifth 40 minutes old
			t.Peers4 = append(t.Peers4, SnapshotPeer4{IP: [4]byte{10, 0, byte(i), byte(p)}, Port: uint16(p % 3), Seeder: p%4 == 0, LastSeen: seen})
			if p%7 == 0 {
				t.Peers6 = append(t.Peers6, SnapshotPeer6{IP: [16]byte{0x20, 0x01, 14: byte(i), 15: byte(p)}, Port: 6881, LastSeen: seen})
			}
		}
		if len(t.Peers4) > 0 {
			t.Peers4 = append(t.Peers4, t.Peers4[0]) // a repeat
		}
		ts = append(ts, t)
	}
	return ts
}

// TestShardLoadIsRestore: a store filled shard by shard, sized by
// ShardSize, holds what one filled by Restore does, with the same counts,
// and its shards' arenas hold no garbage.
func TestShardLoadIsRestore(t *testing.T) {
	now := uint32(time.Now().Unix())
	cutoff := now - 1800
	ts := restoreTestTorrents(now)
	want := New(testConfig)
	defer want.Close()
	for i := range ts {
		want.Restore(&ts[i], cutoff, now)
	}

	s := New(testConfig)
	defer s.Close()
	byShard := map[int][]*Torrent{}
	for i := range ts {
		byShard[s.ShardOf(&ts[i].Hash)] = append(byShard[s.ShardOf(&ts[i].Hash)], &ts[i])
	}
	kept := 0
	for shard, tors := range byShard {
		var size ShardSize
		for _, tr := range tors {
			n4, n6 := 0, 0
			for _, p := range tr.Peers4 {
				if Keeps(p.LastSeen, p.Port, cutoff, now) {
					n4++
				}
			}
			for _, p := range tr.Peers6 {
				if Keeps(p.LastSeen, p.Port, cutoff, now) {
					n6++
				}
			}
			size.Add(n4, n6)
		}
		l := s.LoadShard(shard, size, cutoff, now)
		for _, tr := range tors {
			k, err := l.Add(tr)
			if err != nil {
				t.Fatal(err)
			}
			kept += k
		}
		l.Done()
		l.Done() // does nothing
		sh := &s.shards[shard]
		if sh.arena4.used != sh.arena4.live || sh.arena6.used != sh.arena6.live {
			t.Errorf("shard %d: garbage after its load (%d/%d, %d/%d used/live)", shard, sh.arena4.used, sh.arena4.live, sh.arena6.used, sh.arena6.live)
		}
	}
	if got, w := dump(s), dump(want); got != w {
		t.Fatalf("loaded shard by shard:\n%s\nrestored:\n%s", got, w)
	}
	if got, w := s.Stats(), want.Stats(); got != w || got.Peers() != kept {
		t.Fatalf("stats %+v, restored %+v, kept %d", got, w, kept)
	}
	if n := s.totals.peers.Load(); n != int64(kept) || s.totals.torrents.Load() != int64(want.Stats().Torrents) {
		t.Fatalf("totals %d peers, %d torrents", n, s.totals.torrents.Load())
	}
}

// TestShardLoadRefusesAnotherShard: a torrent given to the wrong shard's
// load is a bug in the caller, not a torrent to lose.
func TestShardLoadRefusesAnotherShard(t *testing.T) {
	s := New(testConfig)
	defer s.Close()
	tr := Torrent{Hash: hashOf(1), Peers4: []SnapshotPeer4{{IP: [4]byte{10, 0, 0, 1}, Port: 1, LastSeen: uint32(time.Now().Unix())}}}
	l := s.LoadShard((s.ShardOf(&tr.Hash)+1)%Shards, ShardSize{}, 0, uint32(time.Now().Unix()))
	defer l.Done()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	l.Add(&tr)
}
