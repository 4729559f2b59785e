package statspage

import (
	"container/heap"
	"encoding/hex"
	"sort"
	"sync"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// busiestCount is how many torrents the page lists, and busiestEvery how
// often they are looked for at most: a look visits every torrent's
// counts, so viewers share one.
const (
	busiestCount = 20
	busiestEvery = 10 * time.Second
)

// Visit calls f with every torrent's info hash and counts, copying no
// peer (swarm.Store.EachTorrent). h is the visitor's, only for the call.
type Visit func(f func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats))

// busiest finds and keeps the busiest torrents, by peers (seeders and
// leechers).
type busiest struct {
	visit Visit // nil: none listed

	mu     sync.Mutex
	at     time.Time
	listed []Torrent
}

// get returns the busiest torrents, looking again if the last look is
// older than busiestEvery. Concurrent callers wait for one look.
func (b *busiest) get(now time.Time) []Torrent {
	if b.visit == nil {
		return []Torrent{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.listed == nil || now.Sub(b.at) >= busiestEvery {
		b.listed, b.at = b.look(), now
	}
	return b.listed
}

// look visits every torrent, keeping the busiestCount busiest in a
// min-heap: a torrent busier than the least of them replaces it.
func (b *busiest) look() []Torrent {
	top := make(byPeers, 0, busiestCount+1)
	b.visit(func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats) {
		c := candidate{hash: *h, stats: st}
		if len(top) == busiestCount && !quieter(top[0], c) {
			return
		}
		heap.Push(&top, c)
		if len(top) > busiestCount {
			heap.Pop(&top)
		}
	})
	sort.Sort(sort.Reverse(top))
	out := make([]Torrent, len(top))
	for i, c := range top {
		out[i] = Torrent{InfoHash: hex.EncodeToString(c.hash[:]), Seeders: c.stats.Complete,
			Leechers: c.stats.Incomplete, Completed: c.stats.Downloaded}
	}
	return out
}

func peers(st bittorrent.ScrapeStats) uint64 { return uint64(st.Complete) + uint64(st.Incomplete) }

// candidate is a torrent in the running for the list.
type candidate struct {
	hash  bittorrent.InfoHash
	stats bittorrent.ScrapeStats
}

func (c candidate) peers() uint64 { return peers(c.stats) }

// byPeers is a min-heap of candidates by peers; ties go to the lower info
// hash, so that the list is the same for the same swarms.
type byPeers []candidate

// Len, Less, Swap, Push and Pop make byPeers a container/heap.
func (h byPeers) Len() int { return len(h) }

// Less puts the quieter candidate first.
func (h byPeers) Less(i, j int) bool { return quieter(h[i], h[j]) }

// quieter orders candidates: fewer peers first, and of two with as many,
// the higher info hash, so that the list is the same for the same swarms
// whatever the order of the visit.
func quieter(a, b candidate) bool {
	if pa, pb := a.peers(), b.peers(); pa != pb {
		return pa < pb
	}
	return string(a.hash[:]) > string(b.hash[:])
}

// Swap swaps two candidates.
func (h byPeers) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

// Push adds a candidate at the end.
func (h *byPeers) Push(x any) { *h = append(*h, x.(candidate)) }

// Pop takes the last candidate off.
func (h *byPeers) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
