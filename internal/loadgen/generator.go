package loadgen

import (
	"encoding/binary"
	"math/rand"
	"sync"
	"sync/atomic"

	"github.com/trakx/trakx/internal/bittorrent"
)

// generator makes one worker's requests: which torrent, which peer.
type generator struct {
	cfg    *Config
	rng    *rand.Rand
	zipf   *rand.Zipf
	hashes []bittorrent.InfoHash // shared by all workers
	worker int
	draws  []uint32 // torrent indexes drawn from zipf
	next   int
	// In fill mode, fill hands out peers 0..fillTotal-1 to the workers:
	// peer j joins torrent j mod Torrents with port 1 + j / Torrents.
	fill      *atomic.Int64
	fillTotal int64
	retry     []int64 // peers whose announce timed out, to send again
}

// exhausted reports whether a fill has handed out every peer.
func (g *generator) exhausted() bool {
	return g.fill != nil && g.fill.Load() >= g.fillTotal && len(g.retry) == 0
}

// claimFillPeer takes the next peer of a fill to announce: one that timed
// out first, else a new one. Workers race for the last peers, so a claim is
// a compare-and-swap rather than a check followed by an add.
func (g *generator) claimFillPeer() (int64, bool) {
	if n := len(g.retry); n > 0 {
		j := g.retry[n-1]
		g.retry = g.retry[:n-1]
		return j, true
	}
	for {
		j := g.fill.Load()
		if j >= g.fillTotal {
			return 0, false
		}
		if g.fill.CompareAndSwap(j, j+1) {
			return j, true
		}
	}
}

var hashCache struct {
	sync.Mutex
	seed   int64
	hashes []bittorrent.InfoHash
}

func hashes(seed int64, n int) []bittorrent.InfoHash {
	hashCache.Lock()
	defer hashCache.Unlock()
	if hashCache.seed != seed || len(hashCache.hashes) != n {
		hashCache.seed, hashCache.hashes = seed, make([]bittorrent.InfoHash, n)
		for i := range n {
			hashCache.hashes[i] = InfoHash(seed, i)
		}
	}
	return hashCache.hashes
}

func newGenerator(cfg *Config, worker int) *generator {
	rng := rand.New(rand.NewSource(cfg.Seed*1_000_003 + int64(worker)))
	return &generator{
		cfg:    cfg,
		rng:    rng,
		zipf:   rand.NewZipf(rng, cfg.Skew, 1, uint64(cfg.Torrents-1)),
		hashes: hashes(cfg.Seed, cfg.Torrents),
		worker: worker,
	}
}

// torrent draws a torrent by popularity. Zipf draws cost more than the rest
// of a request, so a worker draws a table of them once and walks it from
// random points.
func (g *generator) torrent() *bittorrent.InfoHash {
	g.prepare()
	if g.next%4096 == 0 {
		g.next = g.rng.Intn(len(g.draws))
	}
	g.next = (g.next + 1) % len(g.draws)
	return &g.hashes[g.draws[g.next]]
}

// prepare draws the worker's table of torrents, if it has not yet: a few
// milliseconds, which a paced run spends before its schedule starts.
func (g *generator) prepare() {
	if g.draws != nil {
		return
	}
	g.draws = make([]uint32, 1<<16)
	for i := range g.draws {
		if g.cfg.Popularity == "square" {
			u := g.rng.Float64()
			g.draws[i] = uint32(float64(g.cfg.Torrents) * u * u)
		} else {
			g.draws[i] = uint32(g.zipf.Uint64())
		}
	}
}

// fillAnnounce fills req with peer j of a fill.
func (g *generator) fillAnnounce(req *bittorrent.AnnounceRequest, j int64) {
	t := int64(len(g.hashes))
	*req = bittorrent.AnnounceRequest{InfoHash: g.hashes[j%t], Port: uint16(1 + j/t), Left: uint64(j % 2)}
	binary.BigEndian.PutUint64(req.PeerID[:], uint64(j))
	copy(req.PeerID[8:], "-TB0001-")
}

// announce fills req with a random peer of a popular-weighted torrent. The
// peer's port tells peers apart, since all come from one address.
func (g *generator) announce(req *bittorrent.AnnounceRequest) {
	*req = bittorrent.AnnounceRequest{
		InfoHash: *g.torrent(),
		Port:     uint16(1 + g.rng.Intn(65535)),
		NumWant:  int32(g.cfg.NumWant),
		Left:     1,
	}
	if g.rng.Float64() < g.cfg.SeederRatio {
		req.Left = 0
	}
	binary.BigEndian.PutUint32(req.PeerID[:], uint32(g.worker))
	binary.BigEndian.PutUint16(req.PeerID[4:], req.Port)
	copy(req.PeerID[8:], "-TB0001-")
}

// isConnect says whether a request that need not connect does anyway, as
// clients do now and then.
func (g *generator) isConnect() bool { return g.fill == nil && g.rng.Float64() < g.cfg.ConnectRatio }

func (g *generator) isScrape() bool { return g.fill == nil && g.rng.Float64() < g.cfg.ScrapeRatio }

func (g *generator) scrape(dst []bittorrent.InfoHash) []bittorrent.InfoHash {
	for range g.cfg.ScrapeSize {
		dst = append(dst, *g.torrent())
	}
	return dst
}
