package swarm

import (
	"hash/maphash"
	"math/rand/v2"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// TestTableAgainstMap inserts and removes thousands of torrents in one
// table, as one busy shard would see them, and checks every lookup
// against a map after each change of size.
func TestTableAgainstMap(t *testing.T) {
	seed := maphash.MakeSeed()
	hashOf := func(h *bittorrent.InfoHash) uint64 { return maphash.Bytes(seed, h[:]) }
	rng := rand.New(rand.NewPCG(1, 2))
	var tb table
	defer tb.free()
	ref := map[bittorrent.InfoHash]uint32{}
	var all []bittorrent.InfoHash
	for step := range 40000 {
		h := hashOf2(rng.IntN(5000))
		i := tb.find(&h, hashOf(&h))
		_, present := ref[h]
		if (i >= 0) != present {
			t.Fatalf("step %d: find says %d, map says present=%v", step, i, present)
		}
		switch {
		case i >= 0 && tb.slots[i].downloaded != ref[h]:
			t.Fatalf("step %d: slot holds %d, map %d", step, tb.slots[i].downloaded, ref[h])
		case i >= 0 && rng.IntN(2) == 0:
			tb.remove(i)
			delete(ref, h)
		case i < 0:
			i = tb.insert(&h, hashOf(&h), hashOf)
			tb.slots[i].downloaded = uint32(step)
			ref[h] = uint32(step)
			all = append(all, h)
		}
		if tb.count != len(ref) {
			t.Fatalf("step %d: table counts %d, map %d", step, tb.count, len(ref))
		}
		if step%5000 == 4999 {
			checkTable(t, &tb, ref, all, hashOf)
			tb.shrinkToFit(hashOf)
			checkTable(t, &tb, ref, all, hashOf)
		}
	}
	// Emptied, it gives its memory back.
	for h := range ref {
		tb.remove(tb.find(&h, hashOf(&h)))
	}
	tb.shrinkToFit(hashOf)
	if tb.count != 0 || tb.slots != nil {
		t.Fatalf("empty table keeps %d slots, count %d", len(tb.slots), tb.count)
	}
}

func hashOf2(n int) bittorrent.InfoHash { return hashOf(n) }

func checkTable(t *testing.T, tb *table, ref map[bittorrent.InfoHash]uint32, all []bittorrent.InfoHash, hashOf func(*bittorrent.InfoHash) uint64) {
	t.Helper()
	for _, h := range all {
		i := tb.find(&h, hashOf(&h))
		if want, ok := ref[h]; ok != (i >= 0) || (ok && tb.slots[i].downloaded != want) {
			t.Fatalf("lookup of %x: %d, map %v %v", h[:4], i, want, ok)
		}
	}
	for i := range tb.slots {
		s := &tb.slots[i]
		if s.dist == 0 {
			continue
		}
		if home := tb.home(hashOf(&s.hash)); (home+int(s.dist)-1)%len(tb.slots) != i {
			t.Fatalf("slot %d says distance %d from home %d", i, s.dist, home)
		}
	}
	if tb.count*maxLoadDen > len(tb.slots)*maxLoadNum {
		t.Fatalf("%d torrents in %d slots", tb.count, len(tb.slots))
	}
}
