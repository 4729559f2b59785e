// Package loadgen is trakx's load generator: it plays many BitTorrent
// clients against a tracker, over UDP (BEP 15) or HTTP, with a skewed
// torrent popularity (a few torrents very popular, most quiet, as real
// trackers see), fixed random seeds, and batched sends and receives so that
// it costs little next to the tracker it measures.
package loadgen

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Config describes a load.
type Config struct {
	Target   string        // host:port of the tracker
	Protocol string        // "udp", "http" or "ws" (WebTorrent announces, without offers)
	Duration time.Duration // how long to send
	Warmup   time.Duration // sent but not counted
	Workers  int           // sockets (UDP) or connections (HTTP)
	InFlight int           // requests outstanding per UDP socket
	Torrents int
	Skew     float64 // Zipf exponent of torrent popularity (> 1)
	// Popularity is how torrents are drawn: "zipf" (by Skew), or
	// "square", torrent N*u^2 for u uniform in [0, 1): a flatter head
	// and a long tail, so that most of the swarm is touched.
	Popularity   string
	ConnectRatio float64 // UDP: fraction of requests that are connects
	NumWant      int
	ScrapeRatio  float64 // fraction of requests that are scrapes
	ScrapeSize   int     // info hashes per scrape
	SeederRatio  float64 // fraction of announces with left=0
	KeepAlive    bool    // HTTP: reuse connections
	Seed         int64
	Timeout      time.Duration // a request unanswered this long is a timeout
	// Rate, if above 0, paces the load (open loop): Rate requests a second
	// in all, spread evenly over the workers, each sent at its scheduled
	// time whether or not earlier ones were answered, with latency
	// measured from that time. UDP, and HTTP with KeepAlive (pipelined);
	// InFlight does not apply. See paced.go.
	Rate int
}

// Defaults are the settings of a plain `trakx bench`.
func Defaults() Config {
	return Config{
		Protocol: "udp", Duration: 10 * time.Second, Warmup: time.Second, Workers: 4, InFlight: 16,
		Torrents: 10_000, Skew: 1.1, Popularity: "zipf", NumWant: 50, ScrapeRatio: 0.1, ScrapeSize: 5,
		SeederRatio: 0.3, KeepAlive: false, Seed: 1, Timeout: time.Second,
	}
}

// InfoHash is the hash of torrent i for a seed: the same in every run, so
// that a whitelist can be written beforehand.
func InfoHash(seed int64, i int) bittorrent.InfoHash {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(seed))
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return sha1.Sum(b[:])
}

// WriteHashes writes the info hashes of torrents 0..n-1 in hex, one per
// line: an access list, or an opentracker whitelist.
func WriteHashes(w io.Writer, seed int64, n int) error {
	for i := range n {
		h := InfoHash(seed, i)
		if _, err := fmt.Fprintf(w, "%x\n", h[:]); err != nil {
			return err
		}
	}
	return nil
}

// kind is what a request asks.
type kind int

const (
	kindConnect kind = iota
	kindAnnounce
	kindScrape
	kinds
)

var kindNames = [kinds]string{"connect", "announce", "scrape"}

// stats are one worker's counts; workers merge theirs at the end.
type stats struct {
	responses [kinds]uint64
	errors    uint64 // error replies
	timeouts  uint64
	peers     uint64 // peers received in announce replies
	latency   histogram
	// Paced runs only: requests sent (scheduled in the measured window),
	// and how late after its scheduled time each went out.
	sent uint64
	lag  histogram
}

func (s *stats) merge(o *stats) {
	for k := range s.responses {
		s.responses[k] += o.responses[k]
	}
	s.errors += o.errors
	s.timeouts += o.timeouts
	s.peers += o.peers
	s.sent += o.sent
	for i := range s.latency {
		s.latency[i] += o.latency[i]
		s.lag[i] += o.lag[i]
	}
}

// histogram counts latencies in buckets of 10 µs up to 100 ms, then of
// 1 ms up to 10 s (a paced run's queueing delay can pass 100 ms), the last
// bucket holding everything longer.
type histogram [histFine + histCoarse + 1]uint64

const (
	histFine   = 10_000 // 10 µs buckets: [0, 100 ms)
	histCoarse = 9_900  // 1 ms buckets: [100 ms, 10 s)
)

func (h *histogram) add(d time.Duration) {
	i := int(d / (10 * time.Microsecond))
	if i >= histFine {
		i = histFine + int((d-100*time.Millisecond)/time.Millisecond)
	}
	h[min(max(i, 0), len(h)-1)]++
}

// quantile is the lower bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	for _, n := range h {
		total += n
	}
	var seen uint64
	for i, n := range h {
		seen += n
		if n > 0 && float64(seen) >= q*float64(total) {
			if i < histFine {
				return time.Duration(i) * 10 * time.Microsecond
			}
			return 100*time.Millisecond + time.Duration(i-histFine)*time.Millisecond
		}
	}
	return 0
}

// Result is a finished run.
type Result struct {
	Config  Config
	Elapsed time.Duration
	stats
}

// Run plays the load and returns what it measured.
func Run(cfg Config) (*Result, error) {
	if cfg.Popularity != "zipf" && cfg.Popularity != "square" {
		return nil, fmt.Errorf("popularity %q: want zipf or square", cfg.Popularity)
	}
	if cfg.Workers < 1 || cfg.InFlight < 1 || cfg.Torrents < 1 || cfg.Skew <= 1 {
		return nil, fmt.Errorf("workers, in-flight and torrents must be at least 1, and skew above 1")
	}
	if cfg.Rate != 0 {
		return runPaced(cfg)
	}
	var counting atomic.Bool
	stop := make(chan struct{})
	results := make([]*stats, cfg.Workers)
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := newGenerator(&cfg, w)
			st := &stats{}
			results[w] = st
			switch cfg.Protocol {
			case "udp":
				errs[w] = runUDP(&cfg, gen, st, &counting, stop)
			case "http":
				errs[w] = runHTTP(&cfg, gen, st, &counting, stop)
			case "ws":
				errs[w] = runWS(&cfg, gen, st, &counting, stop)
			default:
				errs[w] = fmt.Errorf("protocol %q is none of udp, http, ws", cfg.Protocol)
			}
		}()
	}
	time.Sleep(cfg.Warmup)
	counting.Store(true)
	started := time.Now()
	time.Sleep(cfg.Duration)
	counting.Store(false)
	elapsed := time.Since(started)
	close(stop)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	r := &Result{Config: cfg, Elapsed: elapsed}
	for _, st := range results {
		r.merge(st)
	}
	return r, nil
}

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

// FillResult is a finished fill.
type FillResult struct {
	Peers    int64
	Timeouts uint64
	Errors   uint64
	Elapsed  time.Duration
}

// Fill announces n distinct peers over UDP, spread evenly over
// cfg.Torrents torrents (at most 65535 peers each, as they share one
// address), asking for no peers back: a store of known size for memory
// measurements.
func Fill(cfg Config, n int64) (*FillResult, error) {
	if n > int64(cfg.Torrents)*65535 {
		return nil, fmt.Errorf("%d peers need at least %d torrents (65535 peers each from one address)", n, (n+65534)/65535)
	}
	cfg.Protocol, cfg.NumWant, cfg.ScrapeRatio = "udp", 0, 0
	var next atomic.Int64
	var counting atomic.Bool
	counting.Store(true)
	stop := make(chan struct{})
	results := make([]*stats, cfg.Workers)
	errs := make([]error, cfg.Workers)
	started := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newGenerator(&cfg, w)
			g.fill, g.fillTotal = &next, n
			results[w] = &stats{}
			errs[w] = runUDP(&cfg, g, results[w], &counting, stop)
		}()
	}
	wg.Wait()
	r := &FillResult{Peers: n, Elapsed: time.Since(started)}
	for w, st := range results {
		if errs[w] != nil {
			return nil, errs[w]
		}
		r.Timeouts += st.timeouts
		r.Errors += st.errors
	}
	return r, nil
}

// Answered is how many requests got a reply of any kind, errors included.
func (r *Result) Answered() uint64 {
	n := r.errors
	for _, k := range r.responses {
		n += k
	}
	return n
}

// Sent is how many requests a paced run sent in its measured window; each
// ended as a response, an error reply or a timeout.
func (r *Result) Sent() uint64 { return r.sent }

// Timeouts is how many requests got no answer within the timeout.
func (r *Result) Timeouts() uint64 { return r.timeouts }

// Errors is how many requests got an error reply.
func (r *Result) Errors() uint64 { return r.errors }

// Latency is quantile q of the answered requests' latency (in a paced run,
// from each request's scheduled send), to the histogram's bucket: 10 µs
// below 100 ms, 1 ms above.
func (r *Result) Latency(q float64) time.Duration { return r.latency.quantile(q) }

// Fprint writes the result for people, then one RESULT line for scripts
// (a paced run's ends with rate=, sent= and lag_p99_us=).
func (r *Result) Fprint(w io.Writer) {
	secs := r.Elapsed.Seconds()
	var total uint64
	for _, n := range r.responses {
		total += n
	}
	fmt.Fprintf(w, "%s load on %s for %.1fs: %d workers", r.Config.Protocol, r.Config.Target, secs, r.Config.Workers)
	if r.Config.Rate > 0 {
		fmt.Fprintf(w, ", paced at %d requests/s (open loop", r.Config.Rate)
		if r.Config.Protocol == "http" {
			fmt.Fprint(w, ", keep-alive, pipelined")
		}
		fmt.Fprint(w, ")")
	} else if r.Config.Protocol == "udp" {
		fmt.Fprintf(w, " x %d in flight", r.Config.InFlight)
	} else if r.Config.KeepAlive {
		fmt.Fprint(w, ", keep-alive")
	} else {
		fmt.Fprint(w, ", a new connection per request")
	}
	if r.Config.Popularity == "square" {
		fmt.Fprintf(w, "; %d torrents (torrent N*u^2)\n", r.Config.Torrents)
	} else {
		fmt.Fprintf(w, "; %d torrents (Zipf %.2f)\n", r.Config.Torrents, r.Config.Skew)
	}
	fmt.Fprintf(w, "  responses/s  %10.0f\n", float64(total)/secs)
	for k, n := range r.responses {
		if n > 0 {
			fmt.Fprintf(w, "    %-9s  %10.0f\n", kindNames[k], float64(n)/secs)
		}
	}
	peers := 0.0
	if n := r.responses[kindAnnounce]; n > 0 {
		peers = float64(r.peers) / float64(n)
	}
	fmt.Fprintf(w, "  errors %d, timeouts %d, peers per announce reply %.1f\n", r.errors, r.timeouts, peers)
	if r.Config.Rate > 0 {
		fmt.Fprintf(w, "  sent %d (%.0f/s of %d/s asked); sent late by p50 %v, p99 %v, p99.9 %v (the generator's own delay, part of the latency)\n",
			r.sent, float64(r.sent)/secs, r.Config.Rate, r.lag.quantile(0.5), r.lag.quantile(0.99), r.lag.quantile(0.999))
		fmt.Fprint(w, "  latency from the scheduled send")
	} else {
		fmt.Fprint(w, "  latency")
	}
	fmt.Fprintf(w, " p50 %v, p99 %v, p99.9 %v\n", r.latency.quantile(0.5), r.latency.quantile(0.99), r.latency.quantile(0.999))
	fmt.Fprintf(w, "RESULT protocol=%s keepalive=%v rps=%.0f announce_rps=%.0f errors=%d timeouts=%d peers_per_reply=%.1f p50_us=%d p99_us=%d p999_us=%d",
		r.Config.Protocol, r.Config.KeepAlive, float64(total)/secs, float64(r.responses[kindAnnounce])/secs, r.errors, r.timeouts, peers,
		r.latency.quantile(0.5).Microseconds(), r.latency.quantile(0.99).Microseconds(), r.latency.quantile(0.999).Microseconds())
	if r.Config.Rate > 0 {
		fmt.Fprintf(w, " rate=%d sent=%d lag_p99_us=%d", r.Config.Rate, r.sent, r.lag.quantile(0.99).Microseconds())
	}
	fmt.Fprintln(w)
}
